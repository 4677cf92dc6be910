import * as E from 'fp-ts/lib/Either.js';
import { emptyError, isOn, oneOf, type MaskTensor, type RlhfError } from '@rlhf/tensor';

/**
 * How per-token losses over `[B, T]` become one number (SPEC §5):
 * `token-mean` = Σ m·x / Σ m; `seq-mean-token-mean` = mean over rows with a valid token of each
 * row's token mean; `seq-mean-token-sum` = (1/B)·Σ m·x.
 */
export type Aggregation = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum';
export const AGGREGATIONS: readonly Aggregation[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum'];

export const aggregationParam = (value: unknown, fallback: Aggregation = 'token-mean'): E.Either<RlhfError, Aggregation> =>
  oneOf('aggregation', value, fallback, AGGREGATIONS);

export interface AggregationWeights {
  /** [B·T]: `agg(x) = Σ w·x` over valid tokens, so a loss's gradient is `w·dl/dx`. 0 exactly at masked positions, > 0 elsewhere. */
  readonly weights: Float64Array;
  /** Σ m, for the diagnostics that are token means whatever the aggregation. */
  readonly validCount: number;
}

/** The per-token weights of an aggregation over a [B, T] mask; no valid token is an `empty` error. */
export const aggregationWeights = (aggregation: Aggregation, mask: MaskTensor): E.Either<RlhfError, AggregationWeights> => {
  const [B, T] = mask.shape as [number, number];
  const rowCounts = new Float64Array(B);
  for (let i = 0; i < B * T; i++) if (isOn(mask, i)) rowCounts[Math.floor(i / T)]!++;
  const validCount = rowCounts.reduce((a, n) => a + n, 0);
  if (validCount === 0) return E.left(emptyError(`${aggregation}: the mask selects no token, so there is nothing to average`));
  const rowsWithTokens = rowCounts.reduce((a, n) => a + (n > 0 ? 1 : 0), 0);
  const rowWeight = (b: number): number =>
    aggregation === 'token-mean' ? 1 / validCount : aggregation === 'seq-mean-token-sum' ? 1 / B : 1 / (rowsWithTokens * rowCounts[b]!);
  const weights = new Float64Array(B * T);
  for (let b = 0; b < B; b++) {
    if (rowCounts[b] === 0) continue;
    const w = rowWeight(b);
    for (let i = b * T; i < (b + 1) * T; i++) if (isOn(mask, i)) weights[i] = w;
  }
  return E.right({ weights, validCount });
};

/** `Σ w·x` over the tokens with a weight: masked entries are skipped, so NaN or ±Inf there never counts. */
export const aggregate = (weights: Float64Array, x: ArrayLike<number>): number => {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) sum += weights[i]! * x[i]!;
  return sum;
};
