import type { RawLogprobsBackward } from '../raw.js';
import { pTimes, softmaxRow } from './softmaxRow.js';

/**
 * SPEC §2 logprobs.backward: `(1/T)·[g_lp·(onehot(y) − p) − g_H·p·(log p + H)]`.
 * Each element is read before it is written, so `gradLogits` may be the logits buffer itself.
 */
export const logprobsBackward = ({
  logits,
  labels,
  gradLogprobs,
  gradEntropy,
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
    const { lse, meanZ } = softmaxRow(logits, row, V, invT);
    const H = lse - meanZ;
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
