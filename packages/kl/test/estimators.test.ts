import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KL_ESTIMATORS, klEstimate, type KlEstimator } from '@rlhf/kl';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right } from '../../kernels/test/util.js';

const estimate = (estimator: KlEstimator, clamp: number | undefined, logprobs: Float64Array, ref: Float64Array) =>
  right(klEstimate({ estimator, clamp })({ logprobs: f64([logprobs.length], logprobs), refLogprobs: f64([ref.length], ref) }));

describe('kl.estimate', () => {
  it('gradients agree with finite differences for every estimator, with and without clamp (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...KL_ESTIMATORS),
        fc.option(fc.double({ min: 0.5, max: 3, noNaN: true }), { nil: undefined }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 1e6 }),
        (estimator, clamp, n, seed) => {
          const logprobs = randomArray(n, 3, seed);
          const ref = randomArray(n, 3, seed + 1);
          const r = estimate(estimator, clamp, logprobs, ref);
          const fd = numericGradient((x) => Array.from(estimate(estimator, clamp, x, ref).kl.data).reduce((a, b) => a + b, 0), Float64Array.from(logprobs));
          // Compare away from the kinks (δ = 0 for abs, |kl| = clamp), where the derivative is one-sided.
          const smooth = (i: number) =>
            Math.abs(logprobs[i]! - ref[i]!) > 1e-4 && (clamp === undefined || Math.abs(Math.abs(r.kl.data[i]!) - clamp) > 1e-4);
          const idx = [...logprobs.keys()].filter(smooth);
          expect(maxScaledError(idx.map((i) => r.gradLogprobs.data[i]!), idx.map((i) => fd[i]!), 1e-5, 1e-7)).toBeLessThan(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('k2, k3 and abs are never negative; k3 keeps its digits for tiny δ (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: -30, max: 30, noNaN: true }), (delta) => {
        for (const estimator of ['k2', 'k3', 'abs'] as const)
          expect(estimate(estimator, undefined, Float64Array.of(delta), Float64Array.of(0)).kl.data[0]).toBeGreaterThanOrEqual(0);
      }),
    );
    const tiny = 1e-9;
    expect(estimate('k3', undefined, Float64Array.of(tiny), Float64Array.of(0)).kl.data[0]! / ((tiny * tiny) / 2)).toBeCloseTo(1, 6);
  });

  it('follows the definitions on known values', () => {
    const lp = Float64Array.of(0.5, -1, 0);
    const ref = Float64Array.of(0, 0, 0);
    expect([...estimate('k1', undefined, lp, ref).kl.data]).toEqual([0.5, -1, 0]);
    expect([...estimate('k2', undefined, lp, ref).gradLogprobs.data]).toEqual([0.5, -1, 0]);
    expect([...estimate('abs', undefined, lp, ref).gradLogprobs.data]).toEqual([1, -1, 0]);
    const k3 = estimate('k3', undefined, lp, ref);
    expect(k3.kl.data[1]).toBeCloseTo(Math.E - 1 - 1, 12);
    expect(k3.gradLogprobs.data[0]).toBeCloseTo(1 - Math.exp(-0.5), 12);
  });

  it('clamps only strictly outside [−c, c], with gradient 0 there', () => {
    const r = estimate('k1', 2, Float64Array.of(3, -3, 2, 1), Float64Array.of(0, 0, 0, 0));
    expect([...r.kl.data]).toEqual([2, -2, 2, 1]);
    expect([...r.gradLogprobs.data]).toEqual([0, 0, 1, 1]);
  });

  it('works on any rank, keeps the shape and the float dtype, and writes into given buffers', () => {
    const shape = [2, 3, 2];
    const lp = f32(shape, randomArray(12, 2, 7));
    const ref = f32(shape, randomArray(12, 2, 8));
    const out = { kl: new Float32Array(12), gradLogprobs: new Float32Array(12) };
    const r = right(klEstimate({ estimator: 'k3' }, out)({ logprobs: lp, refLogprobs: ref }));
    expect(r.kl.shape).toEqual(shape);
    expect(r.kl.dtype).toBe('float32');
    expect(r.kl.data).toBe(out.kl);
    expect(r.gradLogprobs.data).toBe(out.gradLogprobs);
    const scalar = right(klEstimate()({ logprobs: f64([], [1]), refLogprobs: f64([], [0.25]) }));
    expect(scalar.kl.shape).toEqual([]);
    expect(scalar.kl.data[0]).toBe(0.75);
  });

  it('propagates NaN and ±Inf in the data (not an error)', () => {
    const r = estimate('k2', undefined, Float64Array.of(Number.NaN, Number.POSITIVE_INFINITY), Float64Array.of(0, 0));
    expect(Number.isNaN(r.kl.data[0]!)).toBe(true);
    expect(r.kl.data[1]).toBe(Number.POSITIVE_INFINITY);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], randomArray(6, 1, 1));
    expect(kindOf(klEstimate({ estimator: 'k4' as never })({ logprobs: x, refLogprobs: x }))).toBe('param');
    expect(kindOf(klEstimate({ clamp: 0 })({ logprobs: x, refLogprobs: x }))).toBe('param');
    expect(kindOf(klEstimate({ clamp: -1 })({ logprobs: x, refLogprobs: x }))).toBe('param');
    expect(kindOf(klEstimate()({ logprobs: x, refLogprobs: f32([3, 2], randomArray(6, 1, 1)) }))).toBe('shape');
    expect(kindOf(klEstimate()({ logprobs: x, refLogprobs: f64([2, 3], randomArray(6, 1, 1)) }))).toBe('shape');
    expect(kindOf(klEstimate()({ logprobs: new Float32Array(6) as never, refLogprobs: x }))).toBe('shape');
    expect(kindOf(klEstimate({}, { kl: new Float32Array(5) })({ logprobs: x, refLogprobs: x }))).toBe('shape');
    expect(kindOf(klEstimate({ estimator: null, clamp: null })({ logprobs: x, refLogprobs: x }))).toBe('no error');
  });
});
