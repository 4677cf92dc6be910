import type { FloatArray } from '@rlhf/tensor';

/**
 * Statistics of one row of `z = x / T`, computed stably around the row's maximum raw logit `m`:
 * `logS = log Σ e^{(x−m)/T}` (so `lse = m/T + logS`) and the entropy `H = logS − Σ p·(x−m)/T` (the
 * convention 0·log 0 = 0: an entry with p = 0, such as a −∞ logit, adds nothing). Everything is formed
 * from `x − m`, never from `x/T − m/T`: at |x/T| ~ 1e15 the latter keeps no digit of the difference.
 */
export interface RowStats {
  readonly maxLogit: number;
  readonly logS: number;
  readonly entropy: number;
}

/** `log p` of a logit `x` of a row whose pivot is `m` (any value near its maximum) and `logS` as above. */
export const logSoftmaxAt = (x: number, m: number, logS: number, invT: number): number => (x - m) * invT - logS;

export const softmaxRow = (x: FloatArray, offset: number, V: number, invT: number): RowStats => {
  let maxLogit = -Infinity;
  for (let v = 0; v < V; v++) maxLogit = Math.max(maxLogit, x[offset + v]!);
  let s = 0;
  let t = 0;
  for (let v = 0; v < V; v++) {
    const zm = (x[offset + v]! - maxLogit) * invT;
    const e = Math.exp(zm);
    s += e;
    if (e !== 0) t += e * zm;
  }
  const logS = Math.log(s);
  return { maxLogit, logS, entropy: logS - t / s };
};

/** `p · (log p + c)` with the convention that it is 0 where p = 0 (even when log p = −∞). */
export const pTimes = (p: number, logPlusC: number): number => (p === 0 ? 0 : p * logPlusC);
