import type { RawLogsoftmax } from '../raw.js';
import { logSoftmaxAt, softmaxRow } from './softmaxRow.js';

/** SPEC §2 logsoftmax: `z − lse` over each row. */
export const logsoftmax = ({ logits, N, V, temperature, logsoftmax }: RawLogsoftmax): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    const { maxLogit, logS } = softmaxRow(logits, row, V, invT);
    for (let v = 0; v < V; v++) logsoftmax[row + v] = logSoftmaxAt(logits[row + v]!, maxLogit, logS, invT);
  }
};
