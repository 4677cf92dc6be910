import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  numberParam,
  positive,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import { aggregationParam, aggregationWeights, weightedLoss, type Aggregation } from './aggregation.js';
import { batchInputs, computeNow, gradientBuffer } from './validate.js';

export interface PolicyLossParams {
  /** ε_low > 0, default 0.2: the ratio is clipped below at 1 − ε_low. */
  readonly clipLow?: number | null;
  /** ε_high > 0, default = clipLow: the ratio is clipped above at 1 + ε_high (DAPO's clip-higher). */
  readonly clipHigh?: number | null;
  /** c > 1, absent by default: for A < 0 the loss is capped at −c·A (dual-clip PPO). */
  readonly dualClip?: number | null;
  /** Default token-mean. */
  readonly aggregation?: Aggregation | null;
  /** c > 0, absent by default: the log-ratio is clipped to [−c, c] before exp (OpenRLHF and verl use 20). */
  readonly logRatioClamp?: number | null;
}
export interface PolicyLossInputs {
  /** [B, T] log-probs of the sampled tokens under the current policy. */
  readonly logprobs: FloatTensor;
  /** [B, T] the same under the policy that sampled them. */
  readonly oldLogprobs: FloatTensor;
  /** [B, T] */
  readonly advantages: FloatTensor;
  /** [B, T] 0/1 */
  readonly mask: MaskTensor;
}
export interface PolicyLossOutputs {
  readonly loss: number;
  /** [B, T] d loss / d logprobs, 0 at masked positions. */
  readonly gradLogprobs: FloatTensor;
  /** Token mean of [the clipped branch is the larger loss]. */
  readonly clipFrac: number;
  /** Token mean of (logprobs − oldLogprobs)²/2 (the k2 estimate, unclamped). */
  readonly approxKl: number;
}
export interface PolicyLossOut {
  readonly gradLogprobs?: FloatArray;
}

const optionalParam = (value: unknown, check: (v: unknown) => Result<number>): Result<number | undefined> =>
  value === undefined || value === null ? E.right(undefined) : check(value);

/** Validates everything and returns the computation, so that `ppoLoss` can check all its parts before running any. */
export const preparePolicyLoss =
  (params?: PolicyLossParams, out?: PolicyLossOut) =>
  (inputs: PolicyLossInputs): Result<() => PolicyLossOutputs> =>
    pipe(
      E.Do,
      E.bind('batch', () => batchInputs(['logprobs', 'oldLogprobs', 'advantages'], inputs)),
      E.bind('clipLow', () => positive('clipLow', params?.clipLow, 0.2)),
      E.bind('clipHigh', ({ clipLow }) => positive('clipHigh', params?.clipHigh, clipLow)),
      E.bind('dualClip', () =>
        optionalParam(params?.dualClip, (v) =>
          numberParam('dualClip', v, 0, (c) => c > 1 && Number.isFinite(c), 'a finite number > 1'),
        ),
      ),
      E.bind('logRatioClamp', () => optionalParam(params?.logRatioClamp, (v) => positive('logRatioClamp', v, 0))),
      E.bind('aggregation', () => aggregationParam(params?.aggregation)),
      E.bind('weights', ({ batch, aggregation }) => aggregationWeights(aggregation, batch.mask)),
      E.bind('grad', ({ batch }) => gradientBuffer('gradLogprobs', batch, out?.gradLogprobs)),
      E.map(({ batch, clipLow, clipHigh, dualClip, logRatioClamp, weights, grad }) => () => {
        const { logprobs, oldLogprobs, advantages } = batch.tensors;
        const lo = 1 - clipLow;
        const hi = 1 + clipHigh;
        let clipped = 0;
        let klSum = 0;
        const loss = weightedLoss(weights, batch.mask, grad, (i, token) => {
          const logRatio = logprobs.data[i]! - oldLogprobs.data[i]!;
          klSum += (logRatio * logRatio) / 2;
          const clampActive = logRatioClamp !== undefined && Math.abs(logRatio) > logRatioClamp;
          const ratio = Math.exp(clampActive ? Math.sign(logRatio) * logRatioClamp : logRatio);
          const A = advantages.data[i]!;
          const unclippedLoss = -A * ratio;
          const clippedLoss = -A * Math.min(Math.max(ratio, lo), hi);
          // SPEC: l = l1 if l1 ≥ l2. Testing l2 > l1 instead sends a NaN down the l1 branch, so it reaches loss and gradient.
          const clippedWins = clippedLoss > unclippedLoss;
          if (clippedWins) clipped++;
          token.loss = clippedWins ? clippedLoss : unclippedLoss;
          token.grad = clippedWins || clampActive ? 0 : -A * ratio;
          if (dualClip !== undefined && A < 0 && -dualClip * A < token.loss) {
            token.loss = -dualClip * A;
            token.grad = 0;
          }
        });
        const { validCount } = weights;
        return {
          loss,
          gradLogprobs: unsafeTensor(batch.dtype, batch.shape, grad) as FloatTensor,
          clipFrac: clipped / validCount,
          approxKl: klSum / validCount,
        };
      }),
    );

/**
 * SPEC §5 ppo.policy: the clipped surrogate `max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high))` with optional
 * dual clip and log-ratio clamp, aggregated over the mask; returns the loss, its gradient in
 * `logprobs`, the clip fraction and the k2 approximate KL.
 *
 * @example pipe({ logprobs, oldLogprobs, advantages, mask }, policyLoss({ clipHigh: 0.28 }))
 */
export const policyLoss = computeNow(preparePolicyLoss);
