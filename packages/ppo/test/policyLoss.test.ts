import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATIONS, policyLoss, type PolicyLossParams } from '@rlhf/ppo';
import { maxScaledError, numericGradient, type FloatTensor, type MaskTensor } from '@rlhf/tensor';
import { f32, f64, kindOf, right } from '../../kernels/test/util.js';
import { assertMaskedNeverLeaks, randomBatch, randomMask } from './support.js';

const token = (logRatio: number, advantage: number, params: PolicyLossParams = {}) =>
  right(
    policyLoss(params)({
      logprobs: f64([1, 1], [logRatio]),
      oldLogprobs: f64([1, 1], [0]),
      advantages: f64([1, 1], [advantage]),
      mask: f64([1, 1], [1]),
    }),
  );

const sumValid = (x: FloatTensor, mask: MaskTensor) => Array.from(x.data).reduce((a, v, i) => a + (mask.data[i] ? v : 0), 0);

describe('ppo.policy', () => {
  it('gradients agree with finite differences away from the clip kinks, for every aggregation (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(...AGGREGATIONS),
        fc.double({ min: 0.05, max: 0.4, noNaN: true }),
        fc.double({ min: 0.05, max: 0.4, noNaN: true }),
        fc.option(fc.double({ min: 1.5, max: 3, noNaN: true }), { nil: undefined }),
        fc.option(fc.double({ min: 0.5, max: 1.2, noNaN: true }), { nil: undefined }),
        (B, T, seed, aggregation, clipLow, clipHigh, dualClip, logRatioClamp) => {
          const params = { aggregation, clipLow, clipHigh, dualClip, logRatioClamp };
          const mask = randomMask(B, T, seed);
          const logprobs = randomBatch(B, T, 1.5, seed + 1, -1);
          const oldLogprobs = f64([B, T], Array.from(logprobs.data, (x, i) => x - (((i * 7919 + seed) % 300) / 100 - 1.5)));
          const advantages = randomBatch(B, T, 2, seed + 3);
          const loss = (x: Float64Array) => right(policyLoss(params)({ logprobs: f64([B, T], x), oldLogprobs, advantages, mask })).loss;
          const r = right(policyLoss(params)({ logprobs, oldLogprobs, advantages, mask }));
          const fd = numericGradient(loss, Float64Array.from(logprobs.data));
          const away = (i: number) => {
            const delta = logprobs.data[i]! - oldLogprobs.data[i]!;
            const ratio = Math.exp(delta);
            const near = (a: number, b: number) => Math.abs(a - b) < 1e-4;
            return !(
              near(ratio, 1 - clipLow) ||
              near(ratio, 1 + clipHigh) ||
              (dualClip !== undefined && near(ratio, dualClip)) ||
              (logRatioClamp !== undefined && near(Math.abs(delta), logRatioClamp))
            );
          };
          const idx = [...fd.keys()].filter(away);
          expect(maxScaledError(idx.map((i) => r.gradLogprobs.data[i]!), idx.map((i) => fd[i]!), 1e-5, 1e-8)).toBeLessThan(1);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('at ratio 1 is −agg(A) with gradient −A·w, no clipping and no KL (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1e6 }), (B, T, seed) => {
        const mask = randomMask(B, T, seed);
        const logprobs = randomBatch(B, T, 2, seed + 1);
        const advantages = randomBatch(B, T, 2, seed + 2);
        const r = right(policyLoss()({ logprobs, oldLogprobs: logprobs, advantages, mask }));
        const n = sumValid(f64([B, T], new Array(B * T).fill(1)), mask);
        expect(r.loss).toBeCloseTo(-sumValid(advantages, mask) / n, 12);
        r.gradLogprobs.data.forEach((g, i) => expect(g).toBeCloseTo(mask.data[i] ? -advantages.data[i]! / n : 0, 12));
        expect(r.clipFrac).toBe(0);
        expect(r.approxKl).toBe(0);
      }),
    );
  });

  it('aggregations relate as their definitions say (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1e6 }), (B, T, seed) => {
        const inputs = {
          logprobs: randomBatch(B, T, 0.5, seed),
          oldLogprobs: randomBatch(B, T, 0.5, seed + 1),
          advantages: randomBatch(B, T, 2, seed + 2),
          mask: randomMask(B, T, seed + 3),
        };
        const by = (aggregation: (typeof AGGREGATIONS)[number]) => right(policyLoss({ aggregation })(inputs)).loss;
        const n = sumValid(f64([B, T], new Array(B * T).fill(1)), inputs.mask);
        expect(by('seq-mean-token-sum')).toBeCloseTo((by('token-mean') * n) / B, 10);
        const full = { ...inputs, mask: f64([B, T], new Array(B * T).fill(1)) };
        expect(right(policyLoss({ aggregation: 'seq-mean-token-mean' })(full)).loss).toBeCloseTo(right(policyLoss()(full)).loss, 10);
      }),
    );
  });

  it('clips, clips higher, dual-clips and clamps the log-ratio as the SPEC says', () => {
    const clipped = token(Math.log(1.5), 1);
    expect(clipped.loss).toBeCloseTo(-1.2, 12);
    expect(clipped.gradLogprobs.data[0]).toBe(0);
    expect(clipped.clipFrac).toBe(1);
    const higher = token(Math.log(1.25), 1, { clipHigh: 0.28 });
    expect(higher.loss).toBeCloseTo(-1.25, 12);
    expect(higher.gradLogprobs.data[0]).toBeCloseTo(-1.25, 12);
    expect(higher.clipFrac).toBe(0);
    const negative = token(Math.log(0.5), -1);
    expect(negative.loss).toBeCloseTo(0.8, 12);
    expect(negative.gradLogprobs.data[0]).toBe(0);
    const unclipped = token(Math.log(0.9), -2);
    expect(unclipped.loss).toBeCloseTo(1.8, 12);
    expect(unclipped.gradLogprobs.data[0]).toBeCloseTo(1.8, 12);
    const dual = token(Math.log(5), -1, { dualClip: 3 });
    expect(dual.loss).toBeCloseTo(3, 12);
    expect(dual.gradLogprobs.data[0]).toBe(0);
    expect(token(Math.log(2), -1, { dualClip: 3 }).gradLogprobs.data[0]).toBeCloseTo(2, 12);
    const clamped = token(50, -1, { logRatioClamp: 2 });
    expect(clamped.loss).toBeCloseTo(Math.exp(2), 12);
    expect(clamped.gradLogprobs.data[0]).toBe(0);
    expect(clamped.approxKl).toBe(1250);
  });

  it('never lets NaN or ±Inf at masked positions reach an output; NaN at a valid one propagates (property)', () => {
    assertMaskedNeverLeaks(['logprobs', 'oldLogprobs', 'advantages'], (aggregation, inputs, mask) => {
      const r = right(policyLoss({ aggregation, dualClip: 2, logRatioClamp: 5 })({ ...inputs, mask }));
      return [r.loss, r.clipFrac, r.approxKl, ...r.gradLogprobs.data];
    });
    const nan = right(policyLoss()({ logprobs: f64([1, 2], [Number.NaN, 0]), oldLogprobs: f64([1, 2], [0, 0]), advantages: f64([1, 2], [1, 1]), mask: f64([1, 2], [1, 1]) }));
    expect(Number.isNaN(nan.loss)).toBe(true);
    expect(Number.isNaN(nan.gradLogprobs.data[0]!)).toBe(true);
    expect(Number.isNaN(nan.approxKl)).toBe(true);
  });

  it('accepts uint8 masks, follows the float dtype and writes into a given buffer', () => {
    const x = f32([2, 2], [0.1, -0.2, 0.3, 0.4]);
    const A = f32([2, 2], [1, -1, 2, 0.5]);
    const old = f32([2, 2], [0, 0, 0, 0]);
    const out = new Float32Array(4);
    const a = right(policyLoss({}, { gradLogprobs: out })({ logprobs: x, oldLogprobs: old, advantages: A, mask: { dtype: 'uint8', shape: [2, 2], data: Uint8Array.of(1, 0, 1, 1) } }));
    const b = right(policyLoss()({ logprobs: x, oldLogprobs: old, advantages: A, mask: f32([2, 2], [1, 0, 1, 1]) }));
    expect(a.loss).toBe(b.loss);
    expect(a.gradLogprobs.dtype).toBe('float32');
    expect(a.gradLogprobs.data).toBe(out);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], [0, 0, 0, 0, 0, 0]);
    const ok = { logprobs: x, oldLogprobs: x, advantages: x, mask: f32([2, 3], [1, 1, 1, 1, 1, 1]) };
    expect(kindOf(policyLoss()({ ...ok, mask: f32([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('empty');
    expect(kindOf(policyLoss({ aggregation: 'seq-mean-token-sum' })({ ...ok, mask: f32([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('empty');
    expect(kindOf(policyLoss({ dualClip: 1 })(ok))).toBe('param');
    expect(kindOf(policyLoss({ clipLow: 0 })(ok))).toBe('param');
    expect(kindOf(policyLoss({ clipHigh: -0.2 })(ok))).toBe('param');
    expect(kindOf(policyLoss({ logRatioClamp: 0 })(ok))).toBe('param');
    expect(kindOf(policyLoss({ aggregation: 'sum' as never })(ok))).toBe('param');
    expect(kindOf(policyLoss()({ ...ok, advantages: f32([3, 2], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(policyLoss()({ ...ok, advantages: f64([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(policyLoss()({ ...ok, mask: f32([2, 2], [1, 1, 1, 1]) }))).toBe('shape');
    const flat = f32([6], [0, 0, 0, 0, 0, 0]);
    expect(kindOf(policyLoss()({ logprobs: flat, oldLogprobs: flat, advantages: flat, mask: flat }))).toBe('shape');
    expect(kindOf(policyLoss({ clipLow: null, clipHigh: null, dualClip: null, logRatioClamp: null, aggregation: null })(ok))).toBe('no error');
  });
});
