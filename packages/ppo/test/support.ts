import fc from 'fast-check';
import { expect } from 'vitest';
import { AGGREGATIONS, type Aggregation } from '@rlhf/ppo';
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

/**
 * Property: replacing every masked entry of the named [B, T] inputs by NaN, +Inf or −Inf changes none
 * of the outputs `run` reports, under every aggregation.
 */
export const assertMaskedNeverLeaks = <K extends string>(
  names: readonly K[],
  run: (aggregation: Aggregation, inputs: Record<K, FloatTensor>, mask: MaskTensor) => readonly number[],
): void =>
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 1e6 }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
      fc.constantFrom(...AGGREGATIONS),
      (B, T, seed, poison, aggregation) => {
        const mask = randomMask(B, T, seed, 0.5);
        const clean = names.map((name, k) => [name, randomBatch(B, T, 1.5, seed + 1 + k)] as const);
        const outputs = (p: number) =>
          run(aggregation, Object.fromEntries(clean.map(([name, t]) => [name, poisonMasked(t, mask, p)])) as Record<K, FloatTensor>, mask);
        expect(outputs(poison)).toEqual(outputs(0));
      },
    ),
  );
