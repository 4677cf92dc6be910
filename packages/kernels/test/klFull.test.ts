import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { js } from '@rlhf/kernels';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right, rowCases } from './util.js';

describe('kl.full (js)', () => {
  it('is ≥ 0, and 0 for identical logits (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 1e6 }), (V, seed) => {
        const p = randomArray(V, 5, seed);
        const q = randomArray(V, 5, seed + 1);
        expect(right(js.klFull()({ logitsP: f64([1, V], p), logitsQ: f64([1, V], q) })).kl.data[0]).toBeGreaterThanOrEqual(-1e-12);
        expect(right(js.klFull()({ logitsP: f64([1, V], p), logitsQ: f64([1, V], p) })).kl.data[0]).toBeCloseTo(0, 12);
      }),
    );
  });

  it('its gradient agrees with finite differences of Σ gradKl·kl', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 1e6 }), (V, seed) => {
        const N = 2;
        const T = 0.7 + (seed % 4) / 4;
        const q = randomArray(N * V, 3, seed + 1);
        const gk = randomArray(N, 1, seed + 2);
        const f = (p: Float64Array) =>
          right(js.klFull({ temperature: T })({ logitsP: f64([N, V], p), logitsQ: f64([N, V], q) })).kl.data.reduce((s, v, n) => s + v * gk[n]!, 0);
        const p = randomArray(N * V, 3, seed);
        const { gradLogitsP } = right(
          js.klFull({ temperature: T })({ logitsP: f64([N, V], p), logitsQ: f64([N, V], q), gradKl: f64([N], gk) }),
        );
        expect(maxScaledError(gradLogitsP!.data, numericGradient(f, Float64Array.from(p)), 1e-5, 1e-7)).toBeLessThan(1);
      }),
      { numRuns: 40 },
    );
  });

  it('entries masked out in the policy (−∞) add nothing, even where the reference is −∞ too', () => {
    const r = right(js.klFull()({ logitsP: f32([1, 3], [0, -Infinity, 0]), logitsQ: f32([1, 3], [0, -Infinity, 1]) }));
    expect(Number.isFinite(r.kl.data[0]!)).toBe(true);
    expect(r.gradLogitsP!.data[1]).toBe(0);
  });

  it('skips the gradient on request and rejects mismatched shapes', () => {
    const x = f32([1, 2], [0, 1]);
    expect(right(js.klFull({ withGrad: false })({ logitsP: x, logitsQ: x })).gradLogitsP).toBeUndefined();
    expect(kindOf(js.klFull()({ logitsP: x, logitsQ: f32([2, 1], [0, 1]) }))).toBe('shape');
    expect(kindOf(js.klFull()({ logitsP: x, logitsQ: x, rowStats: f32([1, 3], [0, 0, 0]) }))).toBe('shape');
    expect(kindOf(js.klFull()({ logitsP: x, logitsQ: x, rowStats: f64([1, 5], [0, 0, 0, 0, 0]) }))).toBe('shape');
  });

  it("gives the same kl and gradient from a forward's rowStats, in float32 and float64, sharp to flat", () => {
    fc.assert(
      fc.property(
        rowCases,
        ({ V, seed, T, scale, double }) => {
          const N = 3;
          const p = randomArray(N * V, scale, seed);
          const noise = randomArray(N * V, 1, seed + 1);
          const q = Float64Array.from(p, (v, i) => v + noise[i]!);
          if (V > 2) p[2 * V + 1] = -Infinity; // masked in the policy
          const tensor = double ? f64 : f32;
          const inputs = { logitsP: tensor([N, V], p), logitsQ: tensor([N, V], q), gradKl: tensor([N], randomArray(N, 1, seed + 2)) };
          const { rowStats } = right(js.klFull({ temperature: T, withGrad: false })(inputs));
          expect(rowStats.shape).toEqual([N, 5]);
          const direct = right(js.klFull({ temperature: T })(inputs));
          const saved = right(js.klFull({ temperature: T })({ ...inputs, rowStats }));
          expect(Array.from(saved.kl.data)).toEqual(Array.from(direct.kl.data));
          expect(Array.from(saved.rowStats.data)).toEqual(Array.from(rowStats.data));
          // float32 statistics round sp and μ to 2^-24 relative: the gradient moves by as little
          const tol = double ? 1e-12 : 1e-5;
          expect(maxScaledError(saved.gradLogitsP!.data, direct.gradLogitsP!.data, tol, tol)).toBeLessThan(1);
        },
      ),
      { numRuns: 60 },
    );
  });
});
