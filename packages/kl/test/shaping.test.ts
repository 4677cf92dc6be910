import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KL_ESTIMATORS, klEstimate, shapeRewards } from '@rlhf/kl';
import type { MaskTensor } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right, rng } from '../../kernels/test/util.js';

const randomMask = (B: number, T: number, seed: number): MaskTensor => {
  const r = rng(seed);
  return f64([B, T], Array.from({ length: B * T }, () => (r() < 0.6 ? 1 : 0)));
};

/** The inputs with every masked logprob, and the score of every row without a valid token, replaced by `poison`. */
const poisoned = (mask: MaskTensor, T: number, lp: Float64Array, ref: Float64Array, scores: Float64Array, poison: number) => {
  const at = (x: Float64Array) => x.map((v, i) => (mask.data[i] ? v : poison));
  const emptyRow = (b: number) => mask.data.slice(b * T, (b + 1) * T).every((m) => m === 0);
  return { lp: at(lp), ref: at(ref), scores: scores.map((s, b) => (emptyRow(b) ? poison : s)) };
};

describe('kl.shapeRewards', () => {
  it('is −β·kl over the mask with the score at each row’s last valid token (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(...KL_ESTIMATORS),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (B, T, seed, estimator, beta) => {
          const mask = randomMask(B, T, seed);
          const lp = f64([B, T], randomArray(B * T, 2, seed + 1));
          const ref = f64([B, T], randomArray(B * T, 2, seed + 2));
          const scores = f64([B], randomArray(B, 5, seed + 3));
          const r = right(shapeRewards({ beta, estimator })({ scores, logprobs: lp, refLogprobs: ref, mask }));
          const kl = right(klEstimate({ estimator })({ logprobs: lp, refLogprobs: ref })).kl.data;
          for (let b = 0; b < B; b++) {
            const valid = [...Array(T).keys()].filter((t) => mask.data[b * T + t] !== 0);
            const last = valid[valid.length - 1];
            for (let t = 0; t < T; t++) {
              const i = b * T + t;
              const expected = mask.data[i] ? -beta * kl[i]! : 0;
              expect(r.nonScoreRewards.data[i]).toBeCloseTo(expected, 12);
              expect(r.rewards.data[i]).toBeCloseTo(expected + (t === last ? scores.data[b]! : 0), 12);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never lets NaN or ±Inf at masked positions, or the score of an empty row, reach an output (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        (B, T, seed, poison) => {
          const mask = randomMask(B, T, seed);
          const lp = randomArray(B * T, 2, seed + 1);
          const ref = randomArray(B * T, 2, seed + 2);
          const scores = randomArray(B, 5, seed + 3);
          const run = (x: { lp: Float64Array; ref: Float64Array; scores: Float64Array }) =>
            right(shapeRewards({ estimator: 'k3' })({ scores: f64([B], x.scores), logprobs: f64([B, T], x.lp), refLogprobs: f64([B, T], x.ref), mask }));
          const clean = run(poisoned(mask, T, lp, ref, scores, 0));
          const dirty = run(poisoned(mask, T, lp, ref, scores, poison));
          expect([...dirty.rewards.data]).toEqual([...clean.rewards.data]);
          expect([...dirty.nonScoreRewards.data]).toEqual([...clean.nonScoreRewards.data]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('puts the score at the last valid token of a row with holes, and zeros an empty row', () => {
    const mask = f32([2, 5], [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    const zeros = f32([2, 5], new Array(10).fill(0));
    const r = right(shapeRewards()({ scores: f32([2], [3, 4]), logprobs: zeros, refLogprobs: zeros, mask }));
    // + 0 turns −β·0 = −0 into 0: the same reward.
    expect(Array.from(r.rewards.data, (v) => v + 0)).toEqual([0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
    expect(r.rewards.dtype).toBe('float32');
  });

  it('β = 0 removes the KL term even where the estimate is infinite', () => {
    const mask = f64([1, 2], [1, 1]);
    const r = right(
      shapeRewards({ beta: 0, estimator: 'abs' })({
        scores: f64([1], [1]),
        logprobs: f64([1, 2], [Number.NEGATIVE_INFINITY, 0]),
        refLogprobs: f64([1, 2], [0, 0]),
        mask,
      }),
    );
    expect([...r.rewards.data]).toEqual([0, 1]);
  });

  it('accepts uint8 masks like float ones', () => {
    const lp = f64([2, 3], randomArray(6, 1, 3));
    const ref = f64([2, 3], randomArray(6, 1, 4));
    const scores = f64([2], [1, 2]);
    const bits = [1, 1, 0, 1, 0, 1];
    const a = right(shapeRewards()({ scores, logprobs: lp, refLogprobs: ref, mask: { dtype: 'uint8', shape: [2, 3], data: Uint8Array.from(bits) } }));
    const b = right(shapeRewards()({ scores, logprobs: lp, refLogprobs: ref, mask: f32([2, 3], bits) }));
    expect([...a.rewards.data]).toEqual([...b.rewards.data]);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], randomArray(6, 1, 1));
    const mask = f32([2, 3], [1, 1, 1, 1, 1, 1]);
    const scores = f32([2], [0, 1]);
    const ok = { scores, logprobs: x, refLogprobs: x, mask };
    expect(kindOf(shapeRewards({ beta: -0.1 })(ok))).toBe('param');
    expect(kindOf(shapeRewards({ estimator: 'k5' as never })(ok))).toBe('param');
    expect(kindOf(shapeRewards()({ ...ok, scores: f32([3], [0, 1, 2]) }))).toBe('shape');
    expect(kindOf(shapeRewards()({ ...ok, scores: f64([2], [0, 1]) }))).toBe('shape');
    expect(kindOf(shapeRewards()({ ...ok, mask: f32([3, 2], [1, 1, 1, 1, 1, 1]) }))).toBe('shape');
    expect(kindOf(shapeRewards()({ ...ok, mask: undefined as never }))).toBe('shape');
    const flat = f32([6], randomArray(6, 1, 1));
    expect(kindOf(shapeRewards()({ ...ok, logprobs: flat, refLogprobs: flat, mask: f32([6], [1, 1, 1, 1, 1, 1]) }))).toBe('shape');
  });
});
