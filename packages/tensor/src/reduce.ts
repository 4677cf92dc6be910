import type { MaskTensor, Tensor } from './tensor.js';

/**
 * Masked data never leaks (SPEC): reductions select `m ? x : 0`, they never multiply by the
 * mask, so a NaN or ±Inf at a masked position cannot reach the result.
 */
export const isOn = (mask: MaskTensor | undefined, i: number): boolean => mask === undefined || mask.data[i] !== 0;

/** Σ m·x over all entries. */
export const maskedSum = (x: Tensor, mask?: MaskTensor): number => {
  let s = 0;
  for (let i = 0; i < x.data.length; i++) if (isOn(mask, i)) s += x.data[i]!;
  return s;
};

/** Σ m (the number of selected entries). */
export const maskCount = (mask: MaskTensor | undefined, length: number): number => {
  if (mask === undefined) return length;
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== 0) n++;
  return n;
};

/** Σ m·x / Σ m, and 0 when Σ m = 0 (SPEC's "masked mean"). */
export const maskedMean = (x: Tensor, mask?: MaskTensor): number => {
  const n = maskCount(mask, x.data.length);
  return n === 0 ? 0 : maskedSum(x, mask) / n;
};
