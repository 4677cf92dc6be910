import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  commonFloatDType,
  expectFloat,
  expectMask,
  expectRank,
  expectShape,
  isOn,
  nonNegative,
  outputBuffer,
  separateOutputs,
  total,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import { estimatorParam, logprobPair, pointwiseKl, type KlEstimator } from './estimators.js';

export interface ShapeRewardsParams {
  /** β ≥ 0, default 0.05. */
  readonly beta?: number | null;
  /** Default k1. */
  readonly estimator?: KlEstimator | null;
}
export interface ShapeRewardsInputs {
  /** [B] sequence-level reward-model scores. */
  readonly scores: FloatTensor;
  /** [B, T] */
  readonly logprobs: FloatTensor;
  /** [B, T] */
  readonly refLogprobs: FloatTensor;
  /** [B, T] 0/1 */
  readonly mask: MaskTensor;
}
export interface ShapeRewardsOutputs {
  /** [B, T] −β·kl per valid token, plus the score at each row's last valid token. */
  readonly rewards: FloatTensor;
  /** [B, T] the KL part alone. */
  readonly nonScoreRewards: FloatTensor;
}
export interface ShapeRewardsOut {
  readonly rewards?: FloatArray;
  readonly nonScoreRewards?: FloatArray;
}

/**
 * SPEC §3 kl.shapeRewards (Ziegler et al. 2019): per-token rewards `−β·kl(b,t)` over the mask, with the
 * sequence score added at each row's last valid token. Rows with no valid token are all zeros.
 *
 * @example pipe({ scores, logprobs, refLogprobs, mask }, shapeRewards({ beta: controller.beta }))
 */
export const shapeRewards = total(
  (params?: ShapeRewardsParams, out?: ShapeRewardsOut) =>
  (inputs: ShapeRewardsInputs): Result<ShapeRewardsOutputs> =>
    pipe(
      E.Do,
      E.bind('pair', () => logprobPair(inputs?.logprobs, inputs?.refLogprobs)),
      E.chainFirst(({ pair }) => expectRank(2)('logprobs', pair.logprobs)),
      E.bind('scores', ({ pair }) =>
        pipe(
          expectFloat('scores', inputs.scores),
          E.chain((t) => expectShape([pair.logprobs.shape[0]!])('scores', t)),
        ),
      ),
      E.chainFirst(({ pair, scores }) => commonFloatDType({ logprobs: pair.logprobs, scores })),
      E.bind('mask', ({ pair }) =>
        pipe(
          expectMask('mask', inputs.mask),
          E.chain((t) => expectShape(pair.logprobs.shape)('mask', t as MaskTensor)),
        ),
      ),
      E.bind('beta', () => nonNegative('beta', params?.beta, 0.05)),
      E.bind('estimator', () => estimatorParam(params?.estimator)),
      E.bind('rewards', ({ pair }) =>
        outputBuffer('rewards', pair.logprobs.dtype, pair.logprobs.data.length, out?.rewards),
      ),
      E.bind('nonScore', ({ pair }) =>
        outputBuffer('nonScoreRewards', pair.logprobs.dtype, pair.logprobs.data.length, out?.nonScoreRewards),
      ),
      // Token i's log-probs are read once, before its rewards are written: either output may be written over them.
      E.chainFirst(({ pair, scores, mask, rewards, nonScore }) =>
        separateOutputs(
          { rewards, nonScoreRewards: nonScore },
          { scores: scores.data, logprobs: pair.logprobs.data, refLogprobs: pair.refLogprobs.data, mask: mask.data },
          [
            ['rewards', 'logprobs'],
            ['rewards', 'refLogprobs'],
            ['nonScoreRewards', 'logprobs'],
            ['nonScoreRewards', 'refLogprobs'],
          ],
        ),
      ),
      E.map(({ pair: { logprobs, refLogprobs }, scores, mask, beta, estimator, rewards, nonScore }) => {
        const [B, T] = logprobs.shape as [number, number];
        const k = pointwiseKl(estimator);
        for (let b = 0; b < B; b++) {
          let last = -1;
          let lastPenalty = 0;
          for (let t = 0; t < T; t++) {
            const i = b * T + t;
            // β = 0 removes the term even where the estimate is not finite (SPEC preamble).
            const penalty = isOn(mask, i) && beta !== 0 ? -beta * k.value(logprobs.data[i]! - refLogprobs.data[i]!) : 0;
            if (isOn(mask, i)) {
              last = i;
              lastPenalty = penalty;
            }
            nonScore[i] = penalty;
            rewards[i] = penalty;
          }
          // Summed in float64 before the (possibly float32) store.
          if (last >= 0) rewards[last] = lastPenalty + scores.data[b]!;
        }
        return {
          rewards: unsafeTensor(logprobs.dtype, logprobs.shape, rewards) as FloatTensor,
          nonScoreRewards: unsafeTensor(logprobs.dtype, logprobs.shape, nonScore) as FloatTensor,
        };
      }),
    ),
);
