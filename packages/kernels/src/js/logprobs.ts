import type { RawLogprobs } from '../raw.js';
import { logSoftmaxAt, softmaxRow } from './softmaxRow.js';

/**
 * SPEC §2 logprobs: `z_y − lse` and `H = lse − Σ p·z` per row; ignored rows are 0 and never read.
 * Saves each row's `(m, s, H)` for the backward: the maximum logit, `lse − m/T` and the entropy.
 */
export const logprobs = ({ logits, labels, N, V, temperature, ignoreIndex, logprobs, entropy, rowStats }: RawLogprobs): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (y === ignoreIndex) {
      logprobs[n] = 0;
      entropy[n] = 0;
      rowStats?.fill(0, 3 * n, 3 * n + 3);
      continue;
    }
    const { maxLogit, logS, entropy: H } = softmaxRow(logits, n * V, V, invT);
    logprobs[n] = logSoftmaxAt(logits[n * V + y]!, maxLogit, logS, invT);
    entropy[n] = H;
    if (rowStats) {
      rowStats[3 * n] = maxLogit;
      rowStats[3 * n + 1] = logS;
      rowStats[3 * n + 2] = entropy[n]!;
    }
  }
};
