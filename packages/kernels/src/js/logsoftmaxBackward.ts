import type { RawLogsoftmaxBackward } from '../raw.js';
import { logSoftmaxAt, softmaxRow } from './softmaxRow.js';

/** SPEC §2 logsoftmax.backward: `(1/T)·(g − p·Σ_v g_v)`. */
export const logsoftmaxBackward = ({ logits, gradOutput, N, V, temperature, gradLogits }: RawLogsoftmaxBackward): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    const { maxLogit, logS } = softmaxRow(logits, row, V, invT);
    let sumG = 0;
    for (let v = 0; v < V; v++) sumG += gradOutput[row + v]!;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(logSoftmaxAt(logits[row + v]!, maxLogit, logS, invT));
      gradLogits[row + v] = invT * (gradOutput[row + v]! - (p === 0 ? 0 : p * sumG));
    }
  }
};
