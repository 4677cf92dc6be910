import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  positive,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import { aggregationParam, aggregationWeights, weightedLoss, type Aggregation } from './aggregation.js';
import { batchInputs, computeNow, gradientBuffer } from './validate.js';

export interface ValueLossParams {
  /** ε > 0: values are clipped to oldValues ± ε. Absent: 0.2. `null`: no clipping (unlike other parameters). */
  readonly clipRange?: number | null;
  /** Default token-mean. */
  readonly aggregation?: Aggregation | null;
}
export interface ValueLossInputs {
  /** [B, T] current value predictions. */
  readonly values: FloatTensor;
  /** [B, T] the predictions when the batch was sampled. */
  readonly oldValues: FloatTensor;
  /** [B, T] */
  readonly returns: FloatTensor;
  /** [B, T] 0/1 */
  readonly mask: MaskTensor;
}
export interface ValueLossOutputs {
  readonly loss: number;
  /** [B, T] d loss / d values, 0 at masked positions. */
  readonly gradValues: FloatTensor;
  /** Token mean of [the clipped error is the larger]. */
  readonly clipFrac: number;
}
export interface ValueLossOut {
  readonly gradValues?: FloatArray;
}

/** `null` means no clipping here (SPEC §5), so only `undefined` takes the default. */
const clipRangeParam = (value: unknown): Result<number | undefined> =>
  value === null ? E.right(undefined) : positive('clipRange', value, 0.2);

/** Validates everything and returns the computation, so that `ppoLoss` can check all its parts before running any. */
export const prepareValueLoss =
  (params?: ValueLossParams, out?: ValueLossOut) =>
  (inputs: ValueLossInputs): Result<() => ValueLossOutputs> =>
    pipe(
      E.Do,
      E.bind('batch', () => batchInputs(['values', 'oldValues', 'returns'], inputs)),
      E.bind('clipRange', () => clipRangeParam(params?.clipRange)),
      E.bind('aggregation', () => aggregationParam(params?.aggregation)),
      E.bind('weights', ({ batch, aggregation }) => aggregationWeights(aggregation, batch.mask)),
      E.bind('grad', ({ batch }) => gradientBuffer('gradValues', batch, out?.gradValues)),
      E.map(({ batch, clipRange, weights, grad }) => () => {
        const { values, oldValues, returns } = batch.tensors;
        let clipped = 0;
        const loss = weightedLoss(weights, batch.mask, grad, (i, token) => {
          const v = values.data[i]!;
          const R = returns.data[i]!;
          const lo = clipRange === undefined ? v : oldValues.data[i]! - clipRange;
          const hi = clipRange === undefined ? v : oldValues.data[i]! + clipRange;
          // min/max rather than comparisons so that a NaN bound gives a NaN clipped value, as in clip().
          const vc = Math.min(Math.max(v, lo), hi);
          const clipActive = v < lo || v > hi;
          const unclippedError = (v - R) ** 2;
          const clippedError = (vc - R) ** 2;
          if (clippedError > unclippedError) clipped++;
          // The unclipped branch on a tie. A NaN takes the branch that carries it into the gradient:
          // unclipped when values or returns hold it, clipped when only oldValues (the bounds) do.
          const clippedWins = Number.isNaN(unclippedError) ? false : !(clippedError <= unclippedError);
          token.loss = (clippedWins ? clippedError : unclippedError) / 2;
          token.grad = clippedWins ? (clipActive ? 0 : vc - R) : v - R;
        });
        const { validCount } = weights;
        return {
          loss,
          gradValues: unsafeTensor(batch.dtype, batch.shape, grad) as FloatTensor,
          clipFrac: clipped / validCount,
        };
      }),
    );

/**
 * SPEC §5 ppo.value: `½·max((v − R)², (clip(v, v_old − ε, v_old + ε) − R)²)` aggregated over the mask;
 * returns the loss, its gradient in `values` and the clip fraction.
 *
 * @example pipe({ values, oldValues, returns, mask }, valueLoss({ clipRange: null }))
 */
export const valueLoss = computeNow(prepareValueLoss);
