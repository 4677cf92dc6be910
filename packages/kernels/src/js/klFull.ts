import type { RawKlFull } from '../raw.js';
import { pTimes, softmaxRow } from './softmaxRow.js';

/**
 * SPEC §2 kl.full: `kl = Σ p·(log p − log q)` per row (entries with p = 0 add nothing), and
 * `gradLogitsP = (gradKl/T)·p·(log p − log q − kl)`.
 */
export const klFull = ({ logitsP, logitsQ, gradKl, N, V, temperature, kl, gradLogitsP }: RawKlFull): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const row = n * V;
    const lseP = softmaxRow(logitsP, row, V, invT).lse;
    const lseQ = softmaxRow(logitsQ, row, V, invT).lse;
    let sum = 0;
    for (let v = 0; v < V; v++) {
      const logP = logitsP[row + v]! * invT - lseP;
      sum += pTimes(Math.exp(logP), logP - (logitsQ[row + v]! * invT - lseQ));
    }
    kl[n] = sum;
    if (!gradLogitsP) continue;
    const scale = (gradKl ? gradKl[n]! : 1) * invT;
    for (let v = 0; v < V; v++) {
      const logP = logitsP[row + v]! * invT - lseP;
      const logQ = logitsQ[row + v]! * invT - lseQ;
      gradLogitsP[row + v] = scale === 0 ? 0 : scale * pTimes(Math.exp(logP), logP - logQ - sum);
    }
  }
};
