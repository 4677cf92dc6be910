import type { FloatArray } from '@rlhf/tensor';

/**
 * Statistics of one row of `z = x / T`, computed stably around the row maximum `m = max z`:
 * `lse = m + log S` with `S = Σ e^{z−m}`, and `meanZ = Σ p·z` (the convention 0·log 0 = 0: an entry
 * with p = 0, such as a −∞ logit, adds nothing). Entropy is `lse − meanZ`. `maxLogit` is the row's
 * maximum raw logit (`m = maxLogit / T`: rounding is monotone, so the maximum of z is that of x, scaled).
 */
export interface RowStats {
  readonly lse: number;
  readonly meanZ: number;
  readonly maxLogit: number;
  readonly logS: number;
}

export const softmaxRow = (x: FloatArray, offset: number, V: number, invT: number): RowStats => {
  let maxLogit = -Infinity;
  for (let v = 0; v < V; v++) maxLogit = Math.max(maxLogit, x[offset + v]!);
  const m = maxLogit * invT;
  let s = 0;
  let t = 0;
  for (let v = 0; v < V; v++) {
    const zm = x[offset + v]! * invT - m;
    const e = Math.exp(zm);
    s += e;
    if (e !== 0) t += e * zm;
  }
  const logS = Math.log(s);
  return { lse: m + logS, meanZ: m + t / s, maxLogit, logS };
};

/** `p · (log p + c)` with the convention that it is 0 where p = 0 (even when log p = −∞). */
export const pTimes = (p: number, logPlusC: number): number => (p === 0 ? 0 : p * logPlusC);
