import type { FloatArray } from '@rlhf/tensor';

/**
 * Statistics of one row of `z = x / T`, computed stably around the row maximum `m`:
 * `lse = m + log S` with `S = Σ e^{z−m}`, and `meanZ = Σ p·z` (the convention 0·log 0 = 0: an entry
 * with p = 0, such as a −∞ logit, adds nothing). Entropy is `lse − meanZ`.
 */
export interface RowStats {
  readonly lse: number;
  readonly meanZ: number;
}

export const softmaxRow = (x: FloatArray, offset: number, V: number, invT: number): RowStats => {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, x[offset + v]! * invT);
  let s = 0;
  let t = 0;
  for (let v = 0; v < V; v++) {
    const zm = x[offset + v]! * invT - m;
    const e = Math.exp(zm);
    s += e;
    if (e !== 0) t += e * zm;
  }
  const logS = Math.log(s);
  return { lse: m + logS, meanZ: m + t / s };
};

/** `p · (log p + c)` with the convention that it is 0 where p = 0 (even when log p = −∞). */
export const pTimes = (p: number, logPlusC: number): number => (p === 0 ? 0 : p * logPlusC);
