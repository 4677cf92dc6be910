import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pairwise } from '@rlhf/preference';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right } from './util.js';

describe('preference.pairwise', () => {
  it('gradients agree with finite differences for any smoothing, margin and centering (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.double({ min: 0, max: 0.49, noNaN: true }),
        fc.double({ min: 0, max: 0.1, noNaN: true }),
        (B, seed, eps, c) => {
          const chosen = randomArray(B, 4, seed);
          const rejected = randomArray(B, 4, seed + 1);
          const margin = f64([B], randomArray(B, 1, seed + 2));
          const params = { labelSmoothing: eps, centerCoef: c };
          const loss = (ch: Float64Array, rj: Float64Array) => right(pairwise(params)({ chosen: f64([B], ch), rejected: f64([B], rj), margin })).loss;
          const r = right(pairwise(params)({ chosen: f64([B], chosen), rejected: f64([B], rejected), margin }));
          expect(maxScaledError(r.gradChosen.data, numericGradient((x) => loss(x, rejected), Float64Array.from(chosen)))).toBeLessThan(1);
          expect(maxScaledError(r.gradRejected.data, numericGradient((x) => loss(chosen, x), Float64Array.from(rejected)))).toBeLessThan(1);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('is log 2 at a tie, stable at ±1e4, and counts accuracy strictly', () => {
    const r = right(pairwise()({ chosen: f32([3], [0, 1e4, -1e4]), rejected: f32([3], [0, -1e4, 1e4]) }));
    expect(r.loss).toBeCloseTo((Math.log(2) + 0 + 2e4) / 3, 6);
    expect(r.accuracy).toBeCloseTo(1 / 3, 12);
    expect(Number.isFinite(r.gradChosen.data[2]!)).toBe(true);
  });

  it('returns typed errors', () => {
    const x = f32([2], [0, 1]);
    expect(kindOf(pairwise()({ chosen: x, rejected: f32([3], [0, 1, 2]) }))).toBe('shape');
    expect(kindOf(pairwise({ labelSmoothing: 0.5 })({ chosen: x, rejected: x }))).toBe('param');
    expect(kindOf(pairwise({ centerCoef: -1 })({ chosen: x, rejected: x }))).toBe('param');
    expect(kindOf(pairwise()({ chosen: f32([0], []), rejected: f32([0], []) }))).toBe('empty');
    expect(kindOf(pairwise({ backend: 'tpu' as never })({ chosen: x, rejected: x }))).toBe('param');
  });
});
