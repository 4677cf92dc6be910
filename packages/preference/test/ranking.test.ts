import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pairwise, ranking } from '@rlhf/preference';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right } from './util.js';

const ranks = (B: number, K: number, values: number[]) => ({ dtype: 'int32' as const, shape: [B, K], data: Int32Array.from(values) });

describe('preference.ranking', () => {
  it('with K = 2 equals the pairwise loss (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 1e6 }), (B, seed) => {
        const chosen = randomArray(B, 5, seed);
        const rejected = randomArray(B, 5, seed + 1);
        const rewards = f64([B, 2], Array.from({ length: 2 * B }, (_, i) => (i % 2 === 0 ? chosen : rejected)[i >> 1]!));
        const rk = right(ranking()({ rewards, ranks: ranks(B, 2, Array.from({ length: 2 * B }, (_, i) => i % 2)) }));
        const pw = right(pairwise()({ chosen: f64([B], chosen), rejected: f64([B], rejected) }));
        expect(rk.loss).toBeCloseTo(pw.loss, 12);
        expect(rk.accuracy).toBeCloseTo(pw.accuracy, 12);
        for (let b = 0; b < B; b++) {
          expect(rk.grad.data[2 * b]).toBeCloseTo(pw.gradChosen.data[b]!, 12);
          expect(rk.grad.data[2 * b + 1]).toBeCloseTo(pw.gradRejected.data[b]!, 12);
        }
      }),
    );
  });

  it('normalises by C(K,2) per prompt and averages over prompts', () => {
    const K = 4;
    const r = [0.5, -1, 2, 0.1];
    const got = right(ranking()({ rewards: f64([1, K], r), ranks: ranks(1, K, [0, 1, 2, 3]) }));
    let want = 0;
    for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) want -= Math.log(1 / (1 + Math.exp(-(r[i]! - r[j]!))));
    expect(got.loss).toBeCloseTo(want / 6, 12);
    expect(got.pairs).toBe(6);
  });

  it('gradients agree with finite differences with ties and padding (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 6 }), fc.integer({ min: 0, max: 1e6 }), (B, K, seed) => {
        const rk = Array.from({ length: B * K }, (_, i) => ((seed >> (i % 20)) % 3 === 0 && i % K !== 0 ? -1 : (seed + i * 7) % K));
        // at least one pair in the first prompt
        rk[0] = 0;
        rk[1] = K - 1 === 0 ? 0 : 1;
        const x = randomArray(B * K, 3, seed);
        const rt = ranks(B, K, rk);
        const f = (y: Float64Array) => right(ranking()({ rewards: f64([B, K], y), ranks: rt })).loss;
        const g = right(ranking()({ rewards: f64([B, K], x), ranks: rt })).grad.data;
        expect(maxScaledError(g, numericGradient(f, Float64Array.from(x)))).toBeLessThan(1);
      }),
      { numRuns: 40 },
    );
  });

  it('never reads a padded slot: NaN there leaves loss and gradient finite, with zero gradient', () => {
    const r = right(ranking()({ rewards: f32([2, 3], [1, NaN, 0, 2, 1, Infinity]), ranks: ranks(2, 3, [0, -1, 1, 1, 0, -1]) }));
    expect(Number.isFinite(r.loss)).toBe(true);
    expect([r.grad.data[1], r.grad.data[5]]).toEqual([0, 0]);
    expect(r.accuracy).toBe(0.5);
  });

  it('a prompt whose slots all tie contributes nothing; a batch without pairs is empty; ranks are checked', () => {
    const tied = right(ranking()({ rewards: f32([2, 2], [5, -5, 1, 0]), ranks: ranks(2, 2, [0, 0, 0, 1]) }));
    expect(tied.pairs).toBe(1);
    expect([tied.grad.data[0], tied.grad.data[1]]).toEqual([0, 0]);
    expect(kindOf(ranking()({ rewards: f32([1, 2], [0, 0]), ranks: ranks(1, 2, [1, 1]) }))).toBe('empty');
    expect(kindOf(ranking()({ rewards: f32([1, 2], [0, 0]), ranks: ranks(1, 2, [0, 2]) }))).toBe('index');
    expect(kindOf(ranking()({ rewards: f32([1, 2], [0, 0]), ranks: ranks(1, 2, [0, -2]) }))).toBe('index');
    expect(kindOf(ranking()({ rewards: f32([2], [0, 0]), ranks: ranks(1, 2, [0, 1]) }))).toBe('shape');
  });
});
