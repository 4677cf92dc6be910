import type { RawLogprobs } from '../raw.js';
import { softmaxRow } from './softmaxRow.js';

/** SPEC §2 logprobs: `z_y − lse` and `H = lse − Σ p·z` per row; ignored rows are 0 and never read. */
export const logprobs = ({ logits, labels, N, V, temperature, ignoreIndex, logprobs, entropy }: RawLogprobs): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const y = labels[n]!;
    if (y === ignoreIndex) {
      logprobs[n] = 0;
      entropy[n] = 0;
      continue;
    }
    const { lse, meanZ } = softmaxRow(logits, n * V, V, invT);
    logprobs[n] = logits[n * V + y]! * invT - lse;
    entropy[n] = lse - meanZ;
  }
};
