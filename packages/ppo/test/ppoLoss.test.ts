import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGREGATIONS, aggregationWeights, policyLoss, ppoLoss, valueLoss, type PpoLossInputs } from '@rlhf/ppo';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, right } from '../../kernels/test/util.js';
import { randomBatch, randomMask } from './support.js';

const batch = (B: number, T: number, seed: number): PpoLossInputs => ({
  logprobs: randomBatch(B, T, 0.5, seed),
  oldLogprobs: randomBatch(B, T, 0.5, seed + 1),
  advantages: randomBatch(B, T, 2, seed + 2),
  values: randomBatch(B, T, 2, seed + 3),
  oldValues: randomBatch(B, T, 2, seed + 4),
  returns: randomBatch(B, T, 2, seed + 5),
  entropy: randomBatch(B, T, 1, seed + 6, 2),
  mask: randomMask(B, T, seed + 7),
});

describe('aggregationWeights', () => {
  it('sum to 1 for the means and to Σm/B for seq-mean-token-sum, 0 exactly at masked tokens (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 1e6 }), (B, T, seed) => {
        const mask = randomMask(B, T, seed, 0.5);
        const n = Array.from(mask.data).filter((m) => m !== 0).length;
        for (const aggregation of AGGREGATIONS) {
          const { rowWeights, validCount } = right(aggregationWeights(aggregation, mask));
          expect(validCount).toBe(n);
          const perToken = Array.from(mask.data, (m, i) => (m ? rowWeights[Math.floor(i / T)]! : 0));
          const total = perToken.reduce((a, w) => a + w, 0);
          expect(total).toBeCloseTo(aggregation === 'seq-mean-token-sum' ? n / B : 1, 12);
          perToken.forEach((w, i) => expect(w === 0).toBe(mask.data[i] === 0));
        }
      }),
    );
  });

  it('is an empty error when no token is valid', () => {
    expect(kindOf(aggregationWeights('seq-mean-token-mean', f32([2, 2], [0, 0, 0, 0])))).toBe('empty');
  });
});

describe('ppoLoss', () => {
  it('gradients of the total agree with finite differences in logprobs, values and entropy (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(...AGGREGATIONS),
        fc.double({ min: 0, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 0.1, noNaN: true }),
        (B, T, seed, aggregation, valueCoef, entropyCoef) => {
          // No clipping, so that the total is smooth everywhere (the kinks are each loss's own tests).
          const params = { aggregation, valueCoef, entropyCoef, policy: { clipLow: 100 }, value: { clipRange: null } };
          const inputs = batch(B, T, seed);
          const r = right(ppoLoss(params)(inputs));
          const lossWith = (name: 'logprobs' | 'values' | 'entropy') => (x: Float64Array) =>
            right(ppoLoss(params)({ ...inputs, [name]: f64([B, T], x) })).loss;
          const check = (name: 'logprobs' | 'values' | 'entropy', analytic: ArrayLike<number>) =>
            expect(maxScaledError(analytic, numericGradient(lossWith(name), Float64Array.from(inputs[name]!.data)), 1e-5, 1e-8)).toBeLessThan(1);
          check('logprobs', r.gradLogprobs.data);
          check('values', r.gradValues.data);
          check('entropy', r.gradEntropy!.data);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('is policy + valueCoef·value − entropyCoef·entropy, with the parts as the separate losses give them (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 1e6 }), fc.constantFrom(...AGGREGATIONS), (B, T, seed, aggregation) => {
        const inputs = batch(B, T, seed);
        const r = right(ppoLoss({ aggregation, valueCoef: 0.7, entropyCoef: 0.01, policy: { clipHigh: 0.28 } })(inputs));
        const policy = right(policyLoss({ aggregation, clipHigh: 0.28 })(inputs));
        const value = right(valueLoss({ aggregation })(inputs));
        expect(r.policy.loss).toBe(policy.loss);
        expect(r.value.loss).toBe(value.loss);
        expect(r.loss).toBeCloseTo(policy.loss + 0.7 * value.loss - 0.01 * r.entropy, 12);
        expect([...r.gradLogprobs.data]).toEqual([...policy.gradLogprobs.data]);
        r.gradValues.data.forEach((g, i) => expect(g).toBeCloseTo(0.7 * value.gradValues.data[i]!, 12));
      }),
    );
  });

  it('applies the top-level aggregation to all three terms unless a part names its own', () => {
    const inputs = batch(3, 5, 11);
    const r = right(ppoLoss({ aggregation: 'seq-mean-token-sum', value: { aggregation: 'token-mean' } })(inputs));
    expect(r.policy.loss).toBe(right(policyLoss({ aggregation: 'seq-mean-token-sum' })(inputs)).loss);
    expect(r.value.loss).toBe(right(valueLoss({ aggregation: 'token-mean' })(inputs)).loss);
    const valid = Array.from(inputs.entropy!.data).filter((_, i) => inputs.mask.data[i] !== 0);
    expect(r.entropy).toBeCloseTo(valid.reduce((a, h) => a + h, 0) / 3, 12);
  });

  it('a coefficient of 0 removes its term even when that term is not finite', () => {
    const inputs = batch(2, 4, 5);
    const valid = Array.from(inputs.mask.data).findIndex((m) => m !== 0);
    const nanValues = f64([2, 4], Array.from(inputs.values.data, (v, i) => (i === valid ? Number.NaN : v)));
    const infEntropy = f64([2, 4], Array.from(inputs.entropy!.data, (v, i) => (i === valid ? Number.POSITIVE_INFINITY : v)));
    const r = right(ppoLoss({ valueCoef: 0, entropyCoef: 0 })({ ...inputs, values: nanValues, entropy: infEntropy }));
    expect(Number.isNaN(r.value.loss)).toBe(true);
    expect(r.entropy).toBe(Number.POSITIVE_INFINITY);
    expect(r.loss).toBe(r.policy.loss);
    expect(r.gradValues.data.every((g) => g === 0)).toBe(true);
    expect(r.gradEntropy!.data.every((g) => g === 0)).toBe(true);
  });

  it('without entropy has entropy 0 and no gradEntropy; defaults valueCoef 0.5', () => {
    const { entropy: _, ...inputs } = batch(2, 3, 9);
    const r = right(ppoLoss()(inputs));
    expect(r.entropy).toBe(0);
    expect(r.gradEntropy).toBeUndefined();
    expect(r.loss).toBeCloseTo(r.policy.loss + 0.5 * r.value.loss, 12);
  });

  it('checks every part before computing any, and writes into given buffers', () => {
    const inputs = batch(2, 3, 3);
    const out = { gradLogprobs: new Float64Array(6).fill(7), gradValues: new Float64Array(6), gradEntropy: new Float64Array(6) };
    expect(kindOf(ppoLoss({}, out)({ ...inputs, returns: f64([3, 2], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect([...out.gradLogprobs]).toEqual([7, 7, 7, 7, 7, 7]);
    const r = right(ppoLoss({ entropyCoef: 0.1 }, out)(inputs));
    expect(r.gradLogprobs.data).toBe(out.gradLogprobs);
    expect(r.gradValues.data).toBe(out.gradValues);
    expect(r.gradEntropy!.data).toBe(out.gradEntropy);
  });

  it('returns typed errors', () => {
    const inputs = batch(2, 3, 1);
    expect(kindOf(ppoLoss({ valueCoef: -1 })(inputs))).toBe('param');
    expect(kindOf(ppoLoss({ entropyCoef: -0.1 })(inputs))).toBe('param');
    expect(kindOf(ppoLoss({ aggregation: 'mean' as never })(inputs))).toBe('param');
    expect(kindOf(ppoLoss({ policy: { dualClip: 0.5 } })(inputs))).toBe('param');
    expect(kindOf(ppoLoss({ value: { clipRange: 0 } })(inputs))).toBe('param');
    expect(kindOf(ppoLoss()({ ...inputs, entropy: f64([3, 2], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(ppoLoss()({ ...inputs, entropy: f32([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(ppoLoss()({ ...inputs, mask: f64([2, 3], [0, 0, 0, 0, 0, 0]) }))).toBe('empty');
    expect(kindOf(ppoLoss({ policy: null, value: null, valueCoef: null, entropyCoef: null, aggregation: null })({ ...inputs, entropy: null }))).toBe('no error');
  });
});
