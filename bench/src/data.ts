import * as E from 'fp-ts/lib/Either.js';
import { tensor, type AnyArray, type DTypeOfArray, type RlhfError, type Tensor } from '@rlhf/tensor';

/** Unwraps a result inside a benchmark: an error there is a bug in the setup, so it is thrown and reported. */
export const must = <A>(result: E.Either<RlhfError, A>): A => {
  if (E.isLeft(result)) throw new Error(`${result.left.kind} error: ${result.left.message}`);
  return result.right;
};

/** Runs an operation and discards its outputs (they were written into the caller's buffers). */
export const call = (result: E.Either<RlhfError, unknown>): void => {
  must(result);
};

export const shaped = <A extends AnyArray>(data: A, shape: readonly number[]): Tensor<DTypeOfArray<A>> =>
  must(tensor(data, shape));

/**
 * A deterministic generator (xorshift32): benchmark inputs must be the same from run to run, and
 * filling hundreds of MB must cost far less than the kernels it feeds.
 */
export const generator = (seed: number): (() => number) => {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
};

/** Uniform values in [lo, hi): logits in [−8, 8) are as costly to exponentiate as real ones. */
export const uniform = (length: number, lo: number, hi: number, seed: number): Float32Array => {
  const next = generator(seed);
  const out = new Float32Array(length);
  const width = hi - lo;
  for (let i = 0; i < length; i++) out[i] = lo + width * next();
  return out;
};

/** Integers in [0, bound). */
export const integers = (length: number, bound: number, seed: number): Int32Array => {
  const next = generator(seed);
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * bound);
  return out;
};

/** Each row of `ranks[B, K]` is a random permutation of 0..K−1 (no ties, no padding: C(K,2) pairs). */
export const permutations = (B: number, K: number, seed: number): Int32Array => {
  const next = generator(seed);
  const out = new Int32Array(B * K);
  for (let b = 0; b < B; b++) {
    const row = b * K;
    for (let k = 0; k < K; k++) out[row + k] = k;
    for (let k = K - 1; k > 0; k--) {
      const j = Math.floor(next() * (k + 1));
      const t = out[row + k]!;
      out[row + k] = out[row + j]!;
      out[row + j] = t;
    }
  }
  return out;
};

/** A right-padded mask `[B, T]`: row b holds between T/2 and T valid tokens, as generated responses do. */
export const rightPaddedMask = (B: number, T: number, seed: number): Float32Array => {
  const next = generator(seed);
  const out = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    const length = Math.max(1, Math.ceil(T / 2 + (T / 2) * next()));
    out.fill(1, b * T, b * T + Math.min(length, T));
  }
  return out;
};

export const F32 = Float32Array.BYTES_PER_ELEMENT;
