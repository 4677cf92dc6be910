import fc from 'fast-check';
import * as E from 'fp-ts/lib/Either.js';
import type { FloatTensor, IntTensor, RlhfError } from '@rlhf/tensor';

/** A small seeded generator (mulberry32), so failures reproduce. */
export const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

export const f64 = (shape: number[], values: ArrayLike<number>): FloatTensor => ({
  dtype: 'float64',
  shape,
  data: Float64Array.from(values),
});
export const f32 = (shape: number[], values: ArrayLike<number>): FloatTensor => ({
  dtype: 'float32',
  shape,
  data: Float32Array.from(values),
});
export const i32 = (values: ArrayLike<number>): IntTensor => ({ dtype: 'int32', shape: [values.length], data: Int32Array.from(values) });

export const randomArray = (n: number, scale: number, seed: number): Float64Array => {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
};

export const right = <A>(r: E.Either<RlhfError, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected a result, got ${r.left.message}`);
  return r.right;
};

export const kindOf = (r: E.Either<RlhfError, unknown>): string => (E.isLeft(r) ? r.left.kind : 'no error');

/**
 * Rows for the saved-statistics property tests: a row length, a seed, temperatures from sharp to
 * flat, logit scales up to 1e4, and float32 or float64.
 */
export const rowCases = fc.record({
  V: fc.integer({ min: 1, max: 40 }),
  seed: fc.integer({ min: 0, max: 1e6 }),
  T: fc.constantFrom(0.01, 0.5, 1, 50),
  scale: fc.constantFrom(1, 30, 1e4),
  double: fc.boolean(),
});
