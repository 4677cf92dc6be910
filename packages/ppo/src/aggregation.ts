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

/**
 * Every aggregation is `agg(x) = Σ w·x` over the valid tokens, so a loss's gradient is `w·dl/dx`.
 * The weight w of a valid token depends only on its row, so it is kept per row: a [B·T] array
 * would cost a fresh allocation (and its page faults) on every call.
 */
export interface AggregationWeights {
  /** [B]: the weight w of each valid token of row b (0 for a row without one). */
  readonly rowWeights: Float64Array;
  /** Σ m, for the diagnostics that are token means whatever the aggregation. */
  readonly validCount: number;
}

/** The per-token weights of an aggregation over a [B, T] mask; no valid token is an `empty` error. */
export const aggregationWeights = (aggregation: Aggregation, mask: MaskTensor): E.Either<RlhfError, AggregationWeights> => {
  const [B, T] = mask.shape as [number, number];
  const rowCounts = new Float64Array(B);
  for (let b = 0; b < B; b++) for (let i = b * T; i < (b + 1) * T; i++) if (isOn(mask, i)) rowCounts[b]!++;
  const validCount = rowCounts.reduce((a, n) => a + n, 0);
  if (validCount === 0) return E.left(emptyError(`${aggregation}: the mask selects no token, so there is nothing to average`));
  const rowsWithTokens = rowCounts.reduce((a, n) => a + (n > 0 ? 1 : 0), 0);
  const rowWeights = rowCounts.map((n) =>
    n === 0
      ? 0
      : aggregation === 'token-mean'
        ? 1 / validCount
        : aggregation === 'seq-mean-token-sum'
          ? 1 / B
          : 1 / (rowsWithTokens * n),
  );
  return E.right({ rowWeights, validCount });
};

/** One token's loss `l` and its derivative `g` in the input the loss differentiates. */
export interface TokenTerm {
  loss: number;
  grad: number;
}

/**
 * The loop every PPO loss shares: `Σ w·l` over the valid tokens, writing `w·g` into `grad` and 0 at
 * masked positions. `term(i, into)` fills the unweighted l and g of valid token i; masked tokens are
 * never passed to it, so nothing stored there is read.
 */
export const weightedLoss = (
  { rowWeights }: AggregationWeights,
  mask: MaskTensor,
  grad: Float32Array | Float64Array,
  term: (i: number, into: TokenTerm) => void,
): number => {
  const T = mask.shape[1]!;
  const token: TokenTerm = { loss: 0, grad: 0 };
  let loss = 0;
  for (let b = 0; b < rowWeights.length; b++) {
    const w = rowWeights[b]!;
    for (let i = b * T; i < (b + 1) * T; i++) {
      if (!isOn(mask, i)) {
        grad[i] = 0;
        continue;
      }
      term(i, token);
      loss += w * token.loss;
      grad[i] = w * token.grad;
    }
  }
  return loss;
};
