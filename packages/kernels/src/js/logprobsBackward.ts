import type { FloatArray } from '@rlhf/tensor';
import type { RawLogprobsBackward } from '../raw.js';
import { type RowStats, logSoftmaxAt, pTimes, softmaxRow } from './softmaxRow.js';

/** A row's statistics: the forward's saved `(m, s, H)`, or recomputed. */
const rowStatsOf = (rowStats: FloatArray | null, logits: FloatArray, n: number, V: number, invT: number): RowStats =>
  rowStats
    ? { maxLogit: rowStats[3 * n]!, logS: rowStats[3 * n + 1]!, entropy: rowStats[3 * n + 2]! }
    : softmaxRow(logits, n * V, V, invT);

/**
 * SPEC §2 logprobs.backward: `(1/T)·[g_lp·(onehot(y) − p) − g_H·p·(log p + H)]`.
 * Each element is read before it is written, so `gradLogits` may be the logits buffer itself.
 */
export const logprobsBackward = ({
  logits,
  labels,
  gradLogprobs,
  gradEntropy,
  rowStats,
  N,
  V,
  temperature,
  ignoreIndex,
  gradLogits,
}: RawLogprobsBackward): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    const y = labels[n]!;
    if (y === ignoreIndex) {
      gradLogits.fill(0, row, row + V);
      continue;
    }
    const { maxLogit, logS, entropy: H } = rowStatsOf(rowStats, logits, n, V, invT);
    const gLp = gradLogprobs[n]!;
    const gH = gradEntropy ? gradEntropy[n]! : 0;
    for (let v = 0; v < V; v++) {
      const logP = logSoftmaxAt(logits[row + v]!, maxLogit, logS, invT);
      const p = Math.exp(logP);
      const lpTerm = gLp === 0 ? 0 : gLp * ((v === y ? 1 : 0) - p);
      const hTerm = gH === 0 ? 0 : gH * pTimes(p, logP + H);
      gradLogits[row + v] = invT * (lpTerm - hTerm);
    }
  }
};
