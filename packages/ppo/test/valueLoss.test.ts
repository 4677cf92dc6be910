import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATIONS, valueLoss } from '@rlhf/ppo';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, right } from '../../kernels/test/util.js';
import { assertMaskedNeverLeaks, randomBatch, randomMask } from './support.js';

const token = (value: number, oldValue: number, ret: number, clipRange?: number | null) =>
  right(
    valueLoss(clipRange === undefined ? {} : { clipRange })({
      values: f64([1, 1], [value]),
      oldValues: f64([1, 1], [oldValue]),
      returns: f64([1, 1], [ret]),
      mask: f64([1, 1], [1]),
    }),
  );

describe('ppo.value', () => {
  it('gradients agree with finite differences away from the clip bounds and ties, for every aggregation (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(...AGGREGATIONS),
        fc.option(fc.double({ min: 0.05, max: 1, noNaN: true }), { nil: null }),
        (B, T, seed, aggregation, clipRange) => {
          const mask = randomMask(B, T, seed);
          const values = randomBatch(B, T, 2, seed + 1);
          const oldValues = randomBatch(B, T, 2, seed + 2);
          const returns = randomBatch(B, T, 2, seed + 3);
          const params = { aggregation, clipRange };
          const loss = (x: Float64Array) => right(valueLoss(params)({ values: f64([B, T], x), oldValues, returns, mask })).loss;
          const r = right(valueLoss(params)({ values, oldValues, returns, mask }));
          const fd = numericGradient(loss, Float64Array.from(values.data));
          const away = (i: number) => {
            if (clipRange === null) return true;
            const [v, old, R] = [values.data[i]!, oldValues.data[i]!, returns.data[i]!];
            const vc = Math.min(Math.max(v, old - clipRange), old + clipRange);
            return Math.abs(Math.abs(v - old) - clipRange) > 1e-4 && Math.abs((v - R) ** 2 - (vc - R) ** 2) > 1e-4;
          };
          const idx = [...fd.keys()].filter(away);
          expect(maxScaledError(idx.map((i) => r.gradValues.data[i]!), idx.map((i) => fd[i]!), 1e-5, 1e-8)).toBeLessThan(1);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('without clipping is half the aggregated squared error; a huge range is the same; absent is 0.2 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1e6 }), (B, T, seed) => {
        const inputs = { values: randomBatch(B, T, 2, seed), oldValues: randomBatch(B, T, 2, seed + 1), returns: randomBatch(B, T, 2, seed + 2), mask: randomMask(B, T, seed + 3) };
        const plain = right(valueLoss({ clipRange: null })(inputs));
        let sum = 0;
        let n = 0;
        for (let i = 0; i < B * T; i++)
          if (inputs.mask.data[i]) {
            sum += (inputs.values.data[i]! - inputs.returns.data[i]!) ** 2 / 2;
            n++;
          }
        expect(plain.loss).toBeCloseTo(sum / n, 12);
        expect(plain.clipFrac).toBe(0);
        expect(right(valueLoss({ clipRange: 1e9 })(inputs)).loss).toBeCloseTo(plain.loss, 12);
        expect(right(valueLoss()(inputs)).loss).toBe(right(valueLoss({ clipRange: 0.2 })(inputs)).loss);
      }),
    );
  });

  it('takes the larger branch, the unclipped one on a tie, with gradient 0 through an active clip', () => {
    const clipped = token(1, 0, 2, 0.2);
    expect(clipped.loss).toBeCloseTo(0.5 * 1.8 * 1.8, 12);
    expect(clipped.gradValues.data[0]).toBe(0);
    expect(clipped.clipFrac).toBe(1);
    const unclipped = token(1, 0, 0, 0.2);
    expect(unclipped.loss).toBeCloseTo(0.5, 12);
    expect(unclipped.gradValues.data[0]).toBeCloseTo(1, 12);
    expect(unclipped.clipFrac).toBe(0);
    const inside = token(0.1, 0, 2, 0.2);
    expect(inside.gradValues.data[0]).toBeCloseTo(-1.9, 12);
    expect(inside.clipFrac).toBe(0);
  });

  it('never lets NaN or ±Inf at masked positions reach an output; NaN at a valid one propagates (property)', () => {
    assertMaskedNeverLeaks(['values', 'oldValues', 'returns'], (aggregation, inputs, mask) => {
      const r = right(valueLoss({ aggregation })({ ...inputs, mask }));
      return [r.loss, r.clipFrac, ...r.gradValues.data];
    });
    for (const [v, old, R] of [
      [Number.NaN, 0, 1],
      [0.5, Number.NaN, 1],
      [0.5, 0, Number.NaN],
    ] as const) {
      const r = token(v, old, R);
      expect(Number.isNaN(r.loss)).toBe(true);
      expect(Number.isNaN(r.gradValues.data[0]!)).toBe(true);
    }
  });

  it('follows the float dtype and writes into a given buffer', () => {
    const x = f32([1, 3], [0.1, 0.2, 0.3]);
    const out = new Float32Array(3);
    const r = right(valueLoss({}, { gradValues: out })({ values: x, oldValues: x, returns: f32([1, 3], [0, 0, 0]), mask: f32([1, 3], [1, 1, 0]) }));
    expect(r.gradValues.dtype).toBe('float32');
    expect(r.gradValues.data).toBe(out);
    expect(out[2]).toBe(0);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], [0, 0, 0, 0, 0, 0]);
    const ok = { values: x, oldValues: x, returns: x, mask: f32([2, 3], [1, 1, 1, 1, 1, 1]) };
    expect(kindOf(valueLoss()({ ...ok, mask: f32([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('empty');
    expect(kindOf(valueLoss({ clipRange: 0 })(ok))).toBe('param');
    expect(kindOf(valueLoss({ clipRange: -0.1 })(ok))).toBe('param');
    expect(kindOf(valueLoss({ aggregation: 'mean' as never })(ok))).toBe('param');
    expect(kindOf(valueLoss()({ ...ok, returns: f32([3, 2], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(valueLoss()({ ...ok, oldValues: f64([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(valueLoss()({ ...ok, mask: { dtype: 'int32', shape: [2, 3], data: new Int32Array(6) } as never }))).toBe('shape');
    expect(kindOf(valueLoss({ aggregation: null })(ok))).toBe('no error');
  });
});
