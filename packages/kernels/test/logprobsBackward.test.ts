import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { js } from '@rlhf/kernels';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, i32, kindOf, randomArray, right, rowCases } from './util.js';

/** L = Σ g_lp·logprobs + g_H·entropy: the backward must be its gradient with respect to the logits. */
const objective = (N: number, V: number, labels: number[], gLp: Float64Array, gH: Float64Array, T: number, ignoreIndex = -100) => (x: Float64Array) => {
  const { logprobs, entropy } = right(js.logprobs({ temperature: T, ignoreIndex })({ logits: f64([N, V], x), labels: i32(labels) }));
  let L = 0;
  for (let n = 0; n < N; n++) L += gLp[n]! * logprobs.data[n]! + gH[n]! * entropy.data[n]!;
  return L;
};

describe('logprobs.backward (js)', () => {
  it('agrees with float64 finite differences, with and without the entropy gradient, with ignored rows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1e6 }), fc.boolean(), (V, seed, withEntropy) => {
        const N = 3;
        const T = 0.5 + (seed % 7) / 4;
        const x = randomArray(N * V, 4, seed);
        const labels = [seed % V, -100, (seed + 1) % V];
        const gLp = randomArray(N, 1, seed + 1);
        const gH = withEntropy ? randomArray(N, 1, seed + 2) : new Float64Array(N);
        const { gradLogits } = right(
          js.logprobsBackward({ temperature: T })({
            logits: f64([N, V], x),
            labels: i32(labels),
            gradLogprobs: f64([N], gLp),
            ...(withEntropy && { gradEntropy: f64([N], gH) }),
          }),
        );
        const fd = numericGradient(objective(N, V, labels, gLp, gH, T), Float64Array.from(x));
        expect(maxScaledError(gradLogits.data, fd, 1e-5, 1e-7)).toBeLessThan(1);
      }),
      { numRuns: 40 },
    );
  });

  it('gives the same gradient in place, over the logits buffer', () => {
    const x = randomArray(3 * 7, 3, 9);
    const inputs = { labels: i32([1, 6, 0]), gradLogprobs: f32([3], [1, -2, 0.5]), gradEntropy: f32([3], [0.3, 0, -1]) };
    const copy = right(js.logprobsBackward()({ logits: f32([3, 7], x), ...inputs })).gradLogits.data;
    const logits = f32([3, 7], x);
    const inPlace = right(js.logprobsBackward({ inPlace: true })({ logits, ...inputs })).gradLogits.data;
    expect(inPlace).toBe(logits.data);
    expect(Array.from(inPlace)).toEqual(Array.from(copy));
  });

  it('never lets an ignored row’s NaN logits or gradients leak, and handles −∞ entries', () => {
    const { gradLogits } = right(
      js.logprobsBackward()({
        logits: f32([2, 3], [NaN, NaN, NaN, 0, -Infinity, 1]),
        labels: i32([-100, 2]),
        gradLogprobs: f32([2], [NaN, 1]),
        gradEntropy: f32([2], [Infinity, 1]),
      }),
    );
    expect(Array.from(gradLogits.data.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(gradLogits.data[4]).toBe(0);
    expect(gradLogits.data.every(Number.isFinite)).toBe(true);
  });

  it("gives the same gradient from the forward's rowStats, in float32 and float64, at sharp and flat temperatures", () => {
    fc.assert(
      fc.property(
        rowCases,
        ({ V, seed, T, scale, double }) => {
          const N = 4;
          const x = randomArray(N * V, scale, seed);
          if (V > 2) x[3 * V + 1] = -Infinity; // a masked entry (row 3 is labelled 0)
          const tensor = double ? f64 : f32;
          const inputs = {
            logits: tensor([N, V], x),
            labels: i32([seed % V, -100, (seed + 1) % V, 0]),
            gradLogprobs: tensor([N], randomArray(N, 1, seed + 1)),
            gradEntropy: tensor([N], randomArray(N, 1, seed + 2)),
          };
          const { rowStats } = right(js.logprobs({ temperature: T })(inputs));
          expect(rowStats.shape).toEqual([N, 3]);
          const recomputed = right(js.logprobsBackward({ temperature: T })(inputs)).gradLogits.data;
          const saved = right(js.logprobsBackward({ temperature: T })({ ...inputs, rowStats })).gradLogits.data;
          // float32 statistics round s to 2^-24 relative: p moves by as little
          expect(maxScaledError(saved, recomputed, double ? 1e-12 : 1e-5, double ? 1e-12 : 1e-6)).toBeLessThan(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects rowStats of the wrong shape or dtype', () => {
    const base = { logits: f32([2, 3], new Array(6).fill(0)), labels: i32([0, 1]), gradLogprobs: f32([2], [1, 1]) };
    expect(kindOf(js.logprobsBackward()({ ...base, rowStats: f32([2, 2], [0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(js.logprobsBackward()({ ...base, rowStats: f32([3, 3], new Array(9).fill(0)) }))).toBe('shape');
    expect(kindOf(js.logprobsBackward()({ ...base, rowStats: f64([2, 3], new Array(6).fill(0)) }))).toBe('shape');
    expect(kindOf(js.logprobs({}, { rowStats: new Float32Array(5) })({ logits: base.logits, labels: base.labels }))).toBe('shape');
  });

  it('rejects mismatched gradients and dtypes', () => {
    const base = { logits: f32([2, 3], new Array(6).fill(0)), labels: i32([0, 1]) };
    expect(kindOf(js.logprobsBackward()({ ...base, gradLogprobs: f32([3], [0, 0, 0]) }))).toBe('shape');
    expect(kindOf(js.logprobsBackward()({ ...base, gradLogprobs: f64([2], [0, 0]) }))).toBe('shape');
    expect(kindOf(js.logprobsBackward()({ ...base, labels: i32([0, 7]), gradLogprobs: f32([2], [0, 0]) }))).toBe('index');
  });
});
