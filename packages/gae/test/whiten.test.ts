import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { whiten } from '@rlhf/gae';
import { f32, f64, kindOf, randomArray, right, rng } from '../../kernels/test/util.js';

const bits = (n: number, seed: number): number[] => {
  const r = rng(seed);
  return Array.from({ length: n }, () => (r() < 0.6 ? 1 : 0));
};

/** Mean and unbiased standard deviation of the entries the mask selects. */
const selectedStats = (y: ArrayLike<number>, mask: number[]) => {
  const xs = Array.from(y).filter((_, i) => mask[i]);
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, std: Math.sqrt(variance) };
};

describe('whiten', () => {
  it('gives mean 0 and unbiased std 1 over the mask, 0 elsewhere; shiftMean false keeps the mean (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.double({ min: -50, max: 50, noNaN: true }),
        fc.double({ min: 1, max: 20, noNaN: true }),
        (n, seed, offset, scale) => {
          const mask = bits(n, seed);
          mask[0] = 1;
          mask[n - 1] = 1;
          const x = randomArray(n, scale, seed + 1).map((v) => v + offset);
          x[0] = offset + scale; // at least two distinct selected values, so s² is not tiny
          x[n - 1] = offset - scale;
          const input = { x: f64([n], x), mask: f64([n], mask) };
          const centred = right(whiten()(input)).y.data;
          const stats = selectedStats(centred, mask);
          expect(stats.mean).toBeCloseTo(0, 9);
          expect(stats.std).toBeCloseTo(1, 6);
          mask.forEach((m, i) => m || expect(centred[i]).toBe(0));
          const kept = right(whiten({ shiftMean: false })(input)).y.data;
          expect(selectedStats(kept, mask).mean).toBeCloseTo(selectedStats(x, mask).mean, 9);
          expect(selectedStats(kept, mask).std).toBeCloseTo(1, 6);
        },
      ),
    );
  });

  it('never lets NaN or ±Inf at masked positions reach an output (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        (n, seed, poison) => {
          const mask = bits(n, seed);
          mask[seed % n] = 1;
          const x = randomArray(n, 3, seed + 1);
          const run = (p: number) => right(whiten()({ x: f64([n], x.map((v, i) => (mask[i] ? v : p))), mask: f32([n], mask) })).y.data;
          expect([...run(poison)]).toEqual([...run(0)]);
        },
      ),
    );
  });

  it('maps a single selected entry to 0 (s² = 0), or to itself without mean shift', () => {
    const x = f64([3], [5, Number.NaN, 7]);
    const mask = f64([3], [0, 0, 1]);
    expect([...right(whiten()({ x, mask })).y.data]).toEqual([0, 0, 0]);
    expect([...right(whiten({ shiftMean: false })({ x, mask })).y.data]).toEqual([0, 0, 7]);
  });

  it('whitens every entry without a mask, keeps shape and dtype, accepts uint8 masks', () => {
    const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    const y = right(whiten()({ x }));
    expect(y.y.shape).toEqual([2, 3]);
    expect(y.y.dtype).toBe('float32');
    const stats = selectedStats(y.y.data, [1, 1, 1, 1, 1, 1]);
    expect(stats.mean).toBeCloseTo(0, 6);
    expect(stats.std).toBeCloseTo(1, 6);
    const all = right(whiten()({ x, mask: { dtype: 'uint8', shape: [2, 3], data: Uint8Array.of(1, 1, 1, 1, 1, 1) } }));
    expect([...all.y.data]).toEqual([...y.y.data]);
    const out = new Float32Array(6);
    expect(right(whiten({}, { y: out })({ x })).y.data).toBe(out);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(kindOf(whiten()({ x, mask: f32([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('empty');
    expect(kindOf(whiten()({ x: f32([0], []) }))).toBe('empty');
    expect(kindOf(whiten({ shiftMean: 'no' as never })({ x }))).toBe('param');
    expect(kindOf(whiten()({ x, mask: f32([3, 2], [1, 1, 1, 1, 1, 1]) }))).toBe('shape');
    expect(kindOf(whiten()({ x: { dtype: 'int32', shape: [2], data: Int32Array.of(1, 2) } as never }))).toBe('shape');
    expect(kindOf(whiten({}, { y: new Float64Array(6) })({ x }))).toBe('shape');
    expect(kindOf(whiten({ shiftMean: null })({ x, mask: null }))).toBe('no error');
  });
});
