import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  expectFloat,
  expectShape,
  nonNegative,
  optional,
  outputBuffer,
  separateOutputs,
  shapeError,
  total,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type Result,
} from '@rlhf/tensor';
import { aggregationParam, weightedLoss, aggregationWeights, type Aggregation } from './aggregation.js';
import { preparePolicyLoss, type PolicyLossInputs, type PolicyLossOutputs, type PolicyLossParams } from './policyLoss.js';
import { dataOf } from './validate.js';
import { prepareValueLoss, type ValueLossInputs, type ValueLossOutputs, type ValueLossParams } from './valueLoss.js';

export interface PpoLossParams {
  readonly policy?: PolicyLossParams | null;
  readonly value?: ValueLossParams | null;
  /** ≥ 0, default 0.5. */
  readonly valueCoef?: number | null;
  /** ≥ 0, default 0: the weight of the entropy bonus. */
  readonly entropyCoef?: number | null;
  /** Default token-mean; applies to the policy, value and entropy terms unless `policy`/`value` name their own. */
  readonly aggregation?: Aggregation | null;
}
export interface PpoLossInputs extends PolicyLossInputs, ValueLossInputs {
  /** [B, T] per-token entropy of the policy (e.g. `logprobs`' entropy output); absent = no entropy term. */
  readonly entropy?: FloatTensor | null;
}
export interface PpoLossOutputs {
  /** policy + valueCoef·value − entropyCoef·(aggregated entropy). */
  readonly loss: number;
  readonly policy: PolicyLossOutputs;
  readonly value: ValueLossOutputs;
  /** The aggregated entropy (0 when no entropy was given). */
  readonly entropy: number;
  /** [B, T] d loss / d logprobs (the policy term's gradient; the same tensor as `policy.gradLogprobs`). */
  readonly gradLogprobs: FloatTensor;
  /** [B, T] d loss / d values = valueCoef·value.gradValues. */
  readonly gradValues: FloatTensor;
  /** [B, T] d loss / d entropy, present when entropy was given. */
  readonly gradEntropy?: FloatTensor;
}
export interface PpoLossOut {
  readonly gradLogprobs?: FloatArray;
  readonly gradValues?: FloatArray;
  readonly gradEntropy?: FloatArray;
}

/** c·x, where a coefficient of exactly 0 removes the term even when x is not finite (SPEC preamble). */
const scaled = (c: number, x: number): number => (c === 0 ? 0 : c * x);

/**
 * The whole PPO objective: the clipped surrogate plus `valueCoef` times the clipped value loss minus
 * `entropyCoef` times the aggregated entropy, with each part's outputs and the gradients of the total.
 * Every input and parameter is checked before anything is computed.
 *
 * @example pipe(batch, ppoLoss({ valueCoef: 0.5, aggregation: 'seq-mean-token-mean', policy: { clipHigh: 0.28 } }))
 */
export const ppoLoss = total(
  (params?: PpoLossParams, out?: PpoLossOut) =>
  (inputs: PpoLossInputs): Result<PpoLossOutputs> =>
    pipe(
      E.Do,
      E.bind('aggregation', () => aggregationParam(params?.aggregation)),
      E.bind('valueCoef', () => nonNegative('valueCoef', params?.valueCoef, 0.5)),
      E.bind('entropyCoef', () => nonNegative('entropyCoef', params?.entropyCoef, 0)),
      E.bind('policy', ({ aggregation }) =>
        preparePolicyLoss(
          { ...params?.policy, aggregation: params?.policy?.aggregation ?? aggregation },
          { gradLogprobs: out?.gradLogprobs },
        )(inputs),
      ),
      E.bind('value', ({ aggregation }) =>
        prepareValueLoss({ ...params?.value, aggregation: params?.value?.aggregation ?? aggregation })(inputs),
      ),
      // The policy inputs are valid here, so logprobs fixes the entropy's shape and dtype, and mask is [B, T].
      E.bind('entropy', () =>
        optional((name, u) =>
          pipe(
            expectFloat(name, u),
            E.chain((t) => expectShape(inputs.logprobs.shape)(name, t as FloatTensor)),
            E.chain((t) =>
              t.dtype === inputs.logprobs.dtype
                ? E.right(t)
                : E.left(shapeError(`entropy: expected ${inputs.logprobs.dtype} like logprobs, got ${t.dtype}`)),
            ),
          ),
        )('entropy', inputs.entropy),
      ),
      E.bind('entropyWeights', ({ aggregation }) => aggregationWeights(aggregation, inputs.mask)),
      E.bind('gradValues', () =>
        outputBuffer('gradValues', inputs.values.dtype, inputs.values.data.length, out?.gradValues),
      ),
      E.bind('gradEntropy', ({ entropy }) =>
        entropy ? outputBuffer('gradEntropy', entropy.dtype, entropy.data.length, out?.gradEntropy) : E.right(undefined),
      ),
      // All outputs against all inputs: each gradient may be written over an input of its own part
      // (read token by token first), never over another part's, which the earlier part has overwritten.
      E.chainFirst(({ entropy, gradValues, gradEntropy }) =>
        separateOutputs(
          { gradLogprobs: (out?.gradLogprobs as FloatArray | undefined) ?? null, gradValues, gradEntropy: gradEntropy ?? null },
          dataOf({
            logprobs: inputs.logprobs, oldLogprobs: inputs.oldLogprobs, advantages: inputs.advantages, mask: inputs.mask,
            values: inputs.values, oldValues: inputs.oldValues, returns: inputs.returns, entropy,
          }),
          [
            ...(['logprobs', 'oldLogprobs', 'advantages'] as const).map((i) => ['gradLogprobs', i] as const),
            ...(['values', 'oldValues', 'returns'] as const).map((i) => ['gradValues', i] as const),
            ['gradEntropy', 'entropy'],
          ],
        ),
      ),
      E.map(({ valueCoef, entropyCoef, policy, value, entropy, entropyWeights, gradValues, gradEntropy }) => {
        const policyOut = policy();
        const valueOut = value();
        for (let i = 0; i < gradValues.length; i++) gradValues[i] = scaled(valueCoef, valueOut.gradValues.data[i]!);
        // d(−c·agg(H))/dH = −c·w: the entropy's own term, through the shared loop with l = H and g = −c.
        const meanEntropy = entropy
          ? weightedLoss(entropyWeights, inputs.mask, gradEntropy!, (i, token) => {
              token.loss = entropy.data[i]!;
              token.grad = -entropyCoef;
            })
          : 0;
        return {
          loss: policyOut.loss + scaled(valueCoef, valueOut.loss) - scaled(entropyCoef, meanEntropy),
          policy: policyOut,
          value: valueOut,
          entropy: meanEntropy,
          gradLogprobs: policyOut.gradLogprobs,
          gradValues: unsafeTensor(inputs.values.dtype, inputs.values.shape, gradValues) as FloatTensor,
          ...(gradEntropy && {
            gradEntropy: unsafeTensor(inputs.logprobs.dtype, inputs.logprobs.shape, gradEntropy) as FloatTensor,
          }),
        };
      }),
    ),
);
