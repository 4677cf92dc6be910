import type { FloatTensor, MaskTensor } from '@rlhf/tensor';
import { f64, randomArray, rng } from '../../kernels/test/util.js';

/** A random 0/1 [B, T] mask with at least one valid token. */
export const randomMask = (B: number, T: number, seed: number, p = 0.7): MaskTensor => {
  const r = rng(seed);
  const bits = Array.from({ length: B * T }, () => (r() < p ? 1 : 0));
  bits[seed % (B * T)] = 1;
  return f64([B, T], bits);
};

/** A random float64 [B, T] tensor with entries in (−scale, scale) + offset. */
export const randomBatch = (B: number, T: number, scale: number, seed: number, offset = 0): FloatTensor =>
  f64([B, T], randomArray(B * T, scale, seed).map((x) => x + offset));

/** `t` with every masked entry replaced by `poison`. */
export const poisonMasked = (t: FloatTensor, mask: MaskTensor, poison: number): FloatTensor =>
  f64([...t.shape], Array.from(t.data, (x, i) => (mask.data[i] ? x : poison)));
