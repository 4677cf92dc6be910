import type { FloatArray } from '@rlhf/tensor';
import type { RawLogprobsBackward } from '../raw.js';
import { pTimes, softmaxRow } from './softmaxRow.js';

/** A row's `lse` and entropy: from the forward's saved `(m, s, H)` (lse = m/T + s), or recomputed. */
const rowLseEntropy = (rowStats: FloatArray | null, logits: FloatArray, n: number, V: number, invT: number) => {
  if (rowStats) return { lse: rowStats[3 * n]! * invT + rowStats[3 * n + 1]!, H: rowStats[3 * n + 2]! };
  const { lse, meanZ } = softmaxRow(logits, n * V, V, invT);
  return { lse, H: lse - meanZ };
};

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
    const { lse, H } = rowLseEntropy(rowStats, logits, n, V, invT);
    const gLp = gradLogprobs[n]!;
    const gH = gradEntropy ? gradEntropy[n]! : 0;
    for (let v = 0; v < V; v++) {
      const logP = logits[row + v]! * invT - lse;
      const p = Math.exp(logP);
      const lpTerm = gLp === 0 ? 0 : gLp * ((v === y ? 1 : 0) - p);
      const hTerm = gH === 0 ? 0 : gH * pTimes(p, logP + H);
      gradLogits[row + v] = invT * (lpTerm - hTerm);
    }
  }
};
