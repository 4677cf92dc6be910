import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dpo } from '@rlhf/preference';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right } from './util.js';

describe('preference.dpo', () => {
  for (const lossType of ['sigmoid', 'hinge', 'ipo'] as const) {
    it(`${lossType}: gradients agree with finite differences (property)`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.05, max: 2, noNaN: true }), (B, seed, beta) => {
          const pc = randomArray(B, 5, seed);
          const pr = randomArray(B, 5, seed + 1);
          const refChosen = f64([B], randomArray(B, 5, seed + 2));
          const refRejected = f64([B], randomArray(B, 5, seed + 3));
          const params = { beta, lossType, labelSmoothing: lossType === 'sigmoid' ? 0.1 : 0 };
          const loss = (c: Float64Array, r: Float64Array) =>
            right(dpo(params)({ policyChosen: f64([B], c), policyRejected: f64([B], r), refChosen, refRejected })).loss;
          const out = right(dpo(params)({ policyChosen: f64([B], pc), policyRejected: f64([B], pr), refChosen, refRejected }));
          // hinge has a kink at βh = 1: random inputs land on it with probability 0
          expect(maxScaledError(out.gradPolicyChosen.data, numericGradient((x) => loss(x, pr), Float64Array.from(pc)), 1e-5, 1e-6)).toBeLessThan(1);
          expect(maxScaledError(out.gradPolicyRejected.data, numericGradient((x) => loss(pc, x), Float64Array.from(pr)), 1e-5, 1e-6)).toBeLessThan(1);
        }),
        { numRuns: 30 },
      );
    });
  }

  it('reports implicit rewards and their accuracy', () => {
    const r = right(dpo({ beta: 0.5 })({ policyChosen: f32([2], [-1, -3]), policyRejected: f32([2], [-2, -1]), refChosen: f32([2], [-1, -1]), refRejected: f32([2], [-3, -1]) }));
    expect(Array.from(r.rewardsChosen.data)).toEqual([0, -1]);
    expect(Array.from(r.rewardsRejected.data)).toEqual([0.5, 0]);
    expect(r.accuracy).toBe(0);
  });

  it('hinge has zero gradient at βh = 1 exactly', () => {
    const r = right(dpo({ beta: 1, lossType: 'hinge' })({ policyChosen: f64([1], [1]), policyRejected: f64([1], [0]), refChosen: f64([1], [0]), refRejected: f64([1], [0]) }));
    expect(r.gradPolicyChosen.data[0]).toBe(0);
    // β = 0.01 is not a float32: the kink is where the SPEC puts it on float32 inputs too.
    const z = f32([1], [0]);
    const at = right(dpo({ beta: 0.01, lossType: 'hinge' })({ policyChosen: f32([1], [100]), policyRejected: z, refChosen: z, refRejected: z }));
    expect(at.gradPolicyChosen.data[0]).toBe(0);
  });

  it('hinge propagates a NaN pair into its loss and gradient', () => {
    const z = f32([2], [0, 0]);
    const r = right(dpo({ lossType: 'hinge' })({ policyChosen: f32([2], [Number.NaN, 1]), policyRejected: z, refChosen: z, refRejected: z }));
    expect(r.loss).toBeNaN();
    expect(r.gradPolicyChosen.data[0]).toBeNaN();
    expect(r.gradPolicyChosen.data[1]).toBeCloseTo(-0.05, 7); // −β/B
  });

  it('returns typed errors', () => {
    const x = f32([1], [0]);
    const inputs = { policyChosen: x, policyRejected: x, refChosen: x, refRejected: x };
    expect(kindOf(dpo({ beta: 0 })(inputs))).toBe('param');
    expect(kindOf(dpo({ lossType: 'kto' as never })(inputs))).toBe('param');
    expect(kindOf(dpo()({ ...inputs, refRejected: f32([2], [0, 0]) }))).toBe('shape');
  });
});
