import { describe, expect, it } from 'vitest';
import { VOCABS, expectClose, logits, onEveryIsa, randomVector, reference, requireNative, rng, rowsFor, type LogitsStyle } from './helpers.js';

const raw = requireNative();
const STYLES: readonly LogitsStyle[] = ['normal', 'wide', 'huge', 'neg-inf'];

const klFull = (
  p: Float32Array, q: Float32Array, gradKl: Float32Array | null, N: number, V: number, temperature: number, withGrad: boolean,
  kernels = raw, savedStats: Float32Array | null = null,
) => {
  const out = { kl: new Float32Array(N), gradLogitsP: withGrad ? new Float32Array(N * V) : null, rowStats: new Float32Array(5 * N) };
  kernels.klFull({ logitsP: p, logitsQ: q, gradKl, savedStats, N, V, temperature, ...out });
  return out;
};

describe('kl.full: cpu matches js', () => {
  it.each(VOCABS)('V = %i, every ISA, forward and gradient', (V) => {
    const N = rowsFor(V);
    onEveryIsa((isa) => {
      for (const style of STYLES)
        for (const [temperature, withGradKl] of [[1, false], [0.7, true], [2, true]] as const) {
          const r = rng(V * 13 + style.length + temperature);
          const p = logits(r, N, V, style);
          // q: p perturbed (a realistic reference model) so that kl is small and its relative error meaningful.
          const q = Float32Array.from(p, (v) => (Number.isFinite(v) ? v + 0.5 * r.normal() : v));
          const gradKl = withGradKl ? randomVector(r, N) : null;
          const got = klFull(p, q, gradKl, N, V, temperature, true);
          const want = klFull(p, q, gradKl, N, V, temperature, true, reference);
          const label = `${isa} V=${V} ${style} T=${temperature}`;
          expectClose(got.kl, want.kl, { label: `${label} kl` });
          expectClose(got.gradLogitsP!, want.gradLogitsP!, { label: `${label} grad` });
          const forwardOnly = klFull(p, q, gradKl, N, V, temperature, false);
          expect(Array.from(forwardOnly.kl)).toEqual(Array.from(got.kl));
          // The gradient pass alone, from a forward's saved statistics (cpu's or js's): kl copied, the same gradient.
          for (const [source, stats] of [['cpu', forwardOnly.rowStats], ['js', klFull(p, q, null, N, V, temperature, false, reference).rowStats]] as const) {
            const saved = klFull(p, q, gradKl, N, V, temperature, true, raw, stats);
            expect(Array.from(saved.kl)).toEqual(Array.from(Float32Array.from(stats.filter((_, i) => i % 5 === 4))));
            expectClose(saved.gradLogitsP!, want.gradLogitsP!, { label: `${label} grad from ${source} rowStats` });
          }
        }
    });
  });

  it('identical rows give kl = 0 and a zero gradient; q = 0 where p > 0 gives +∞', () => {
    onEveryIsa(() => {
      const r = rng(11);
      const V = 3000;
      const p = logits(r, 2, V, 'neg-inf');
      const same = klFull(p, p, null, 2, V, 1, true);
      expectClose(same.kl, [0, 0], { atol: 1e-6 });
      expect(Math.max(...Array.from(same.gradLogitsP!, Math.abs))).toBeLessThan(1e-6);
      const q = Float32Array.from(p);
      const finite = p.findIndex((v) => Number.isFinite(v));
      q[finite] = -Infinity;
      expect(klFull(p, q, null, 2, V, 1, false).kl[0]).toBe(Infinity);
    });
  });

  it('a zero gradKl gives a zero gradient row whatever the logits hold', () => {
    onEveryIsa(() => {
      const p = Float32Array.of(NaN, 1, 2), q = Float32Array.of(0, 0, 0);
      const out = klFull(p, q, Float32Array.of(0), 1, 3, 1, true);
      expect(Array.from(out.gradLogitsP!)).toEqual([0, 0, 0]);
      expect(Number.isNaN(out.kl[0])).toBe(true);
    });
  });
});
