import type { FloatArray } from '@rlhf/tensor';
import type { RawKlFull } from '../raw.js';
import { logSoftmaxAt, pTimes, softmaxRow } from './softmaxRow.js';

/** A row pair's saved statistics (mp, sp, r, μ, kl): see KlFullOutputs.rowStats. */
interface KlRowStats {
  readonly mp: number;
  readonly sp: number;
  readonly r: number;
  readonly mu: number;
  readonly kl: number;
}

const savedRow = (s: FloatArray, n: number): KlRowStats => ({
  mp: s[5 * n]!,
  sp: s[5 * n + 1]!,
  r: s[5 * n + 2]!,
  mu: s[5 * n + 3]!,
  kl: s[5 * n + 4]!,
});

/** The statistics of row `n`: kl = Σ p·(log p − log q), and the pivots and μ of the gradient's form. */
const rowStatistics = (logitsP: FloatArray, logitsQ: FloatArray, n: number, V: number, invT: number): KlRowStats => {
  const row = n * V;
  const { maxLogit: mp, logS: sp } = softmaxRow(logitsP, row, V, invT);
  const { maxLogit: mq, logS: sq } = softmaxRow(logitsQ, row, V, invT);
  let at = 0;
  while (at < V - 1 && logitsP[row + at] !== mp) at++;
  const r = Number.isFinite(logitsQ[row + at]!) ? logitsQ[row + at]! : 0;
  let kl = 0;
  let mu = 0;
  for (let v = 0; v < V; v++) {
    const logP = logSoftmaxAt(logitsP[row + v]!, mp, sp, invT);
    const p = Math.exp(logP);
    kl += pTimes(p, logP - logSoftmaxAt(logitsQ[row + v]!, mq, sq, invT));
    mu += pTimes(p, logitsP[row + v]! - mp - (logitsQ[row + v]! - r));
  }
  return { mp, sp, r, mu, kl };
};

/**
 * SPEC §2 kl.full: `kl = Σ p·(log p − log q)` per row (entries with p = 0 add nothing), and
 * `gradLogitsP = (gradKl/T)·p·(log p − log q − kl)`, with `log p − log q − kl` formed as
 * `((xp − mp) − (xq − r) − μ)/T` from the row statistics (computed here, or a forward's saved ones).
 */
export const klFull = ({ logitsP, logitsQ, gradKl, savedStats, N, V, temperature, kl, gradLogitsP, rowStats }: RawKlFull): void => {
  const invT = 1 / temperature;
  for (let n = 0; n < N; n++) {
    const st = savedStats ? savedRow(savedStats, n) : rowStatistics(logitsP, logitsQ, n, V, invT);
    kl[n] = st.kl;
    if (rowStats) rowStats.set([st.mp, st.sp, st.r, st.mu, st.kl], 5 * n);
    if (!gradLogitsP) continue;
    const row = n * V;
    const scale = (gradKl ? gradKl[n]! : 1) * invT;
    for (let v = 0; v < V; v++) {
      const a = logitsP[row + v]! - st.mp;
      const p = Math.exp(a * invT - st.sp);
      gradLogitsP[row + v] = scale === 0 ? 0 : scale * pTimes(p, (a - (logitsQ[row + v]! - st.r) - st.mu) * invT);
    }
  }
};
