import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { cpu } from '@rlhf/native';
import {
  VOCABS,
  expectClose,
  expectSameBits,
  labels,
  logits,
  onEveryIsa,
  poisonIgnoredRows,
  randomVector,
  reference,
  requireNative,
  rng,
  rowsFor,
  t,
  type LogitsStyle,
} from './helpers.js';

const raw = requireNative();
const STYLES: readonly LogitsStyle[] = ['normal', 'wide', 'huge', 'neg-inf'];

const forward = (x: Float32Array, y: Int32Array, N: number, V: number, temperature: number, ignoreIndex: number, kernels = raw) => {
  const out = { logprobs: new Float32Array(N), entropy: new Float32Array(N), rowStats: new Float32Array(3 * N) };
  kernels.logprobs({ logits: x, labels: y, N, V, temperature, ignoreIndex, ...out });
  return out;
};

const backward = (
  x: Float32Array, y: Int32Array, gLp: Float32Array, gH: Float32Array | null, N: number, V: number, temperature: number,
  ignoreIndex: number, kernels = raw, gradLogits = new Float32Array(N * V), rowStats: Float32Array | null = null,
) => {
  kernels.logprobsBackward({ logits: x, labels: y, gradLogprobs: gLp, gradEntropy: gH, rowStats, N, V, temperature, ignoreIndex, gradLogits });
  return gradLogits;
};

describe('logprobs forward: cpu matches js', () => {
  it.each(VOCABS)('V = %i, every ISA, logit styles, temperatures, ignored rows with NaN/Inf', (V) => {
    const N = rowsFor(V);
    onEveryIsa((isa) => {
      for (const style of STYLES) {
        for (const temperature of [1, 0.7, 2.5]) {
          const r = rng(V * 31 + style.length + temperature * 10);
          const x = logits(r, N, V, style);
          const y = labels(r, x, N, V, -100);
          poisonIgnoredRows(x, y, V, -100);
          const got = forward(x, y, N, V, temperature, -100);
          const want = forward(x, y, N, V, temperature, -100, reference);
          const label = `${isa} V=${V} ${style} T=${temperature}`;
          expectClose(got.logprobs, want.logprobs, { label: `${label} logprobs` });
          expectClose(got.entropy, want.entropy, { label: `${label} entropy` });
          for (let n = 0; n < N; n++) if (y[n] === -100) expect([got.logprobs[n], got.entropy[n]]).toEqual([0, 0]);
        }
      }
    });
  });

  it('a label whose logit is −∞ has logprob −∞; −∞ entries add nothing to the entropy', () => {
    onEveryIsa(() => {
      const V = 40;
      const x = Float32Array.from({ length: V }, (_, v) => (v % 2 ? -Infinity : v / 10));
      const got = forward(x, Int32Array.of(1), 1, V, 1, -100);
      expect(got.logprobs[0]).toBe(-Infinity);
      const finite = Float32Array.from({ length: V / 2 }, (_, i) => (2 * i) / 10);
      const want = forward(finite, Int32Array.of(0), 1, V / 2, 1, -100, reference);
      expectClose(got.entropy, want.entropy);
    });
  });

  it('NaN in a row that is not ignored propagates to its outputs (and only its)', () => {
    onEveryIsa(() => {
      const V = 100;
      const r = rng(5);
      const x = logits(r, 2, V);
      x[37] = NaN;
      const got = forward(x, Int32Array.of(3, 4), 2, V, 1, -100);
      expect(Number.isNaN(got.logprobs[0])).toBe(true);
      expect(Number.isNaN(got.entropy[0])).toBe(true);
      expect(Number.isFinite(got.logprobs[1])).toBe(true);
    });
  });

  it('runs through the cpu facade with caller-provided outputs (zero-copy)', () => {
    const r = rng(7);
    const N = 5, V = 300;
    const x = logits(r, N, V);
    const y = labels(r, x, N, V, -1);
    const out = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
    const res = cpu!.logprobs({ ignoreIndex: -1 }, out)({ logits: t(x, [N, V]), labels: t(y, [N]) });
    expect(E.isRight(res)).toBe(true);
    if (E.isRight(res)) {
      expect(res.right.logprobs.data).toBe(out.logprobs);
      expectClose(out.logprobs, forward(x, y, N, V, 1, -1, reference).logprobs);
    }
  });
});

describe('logprobs backward: cpu matches js', () => {
  it.each(VOCABS)("V = %i, every ISA, with and without the entropy gradient, and from a forward's rowStats", (V) => {
    const N = rowsFor(V);
    onEveryIsa((isa) => {
      for (const style of STYLES) {
        for (const [temperature, withEntropy] of [[1, true], [0.6, false], [1.7, true], [0.05, true]] as const) {
          const r = rng(V * 17 + style.length * 3 + temperature * 10);
          const x = logits(r, N, V, style);
          const y = labels(r, x, N, V, -100);
          poisonIgnoredRows(x, y, V, -100);
          const gLp = randomVector(r, N);
          const gH = withEntropy ? randomVector(r, N) : null;
          for (let n = 0; n < N; n++) if (y[n] === -100) (gLp[n] = NaN), gH && (gH[n] = Infinity);
          const got = backward(x, y, gLp, gH, N, V, temperature, -100);
          const want = backward(x, y, gLp, gH, N, V, temperature, -100, reference);
          const label = `${isa} V=${V} ${style} T=${temperature} H=${withEntropy}`;
          expectClose(got, want, { label });
          // No statistics pass: the row statistics of the forward, cpu's or js's (the same definition).
          for (const kernels of [raw, reference]) {
            const stats = forward(x, y, N, V, temperature, -100, kernels).rowStats;
            const saved = backward(x, y, gLp, gH, N, V, temperature, -100, raw, new Float32Array(N * V), stats);
            expectClose(saved, want, { label: `${label} rowStats from ${kernels === raw ? 'cpu' : 'js'}` });
          }
        }
      }
    });
  });

  it('the saved rowStats: lse = m/T + s and H = the entropy; ignored rows (0, 0, 0)', () => {
    onEveryIsa((isa) => {
      for (const V of [1, 33, 1031]) {
        const N = 9, T = 0.3;
        const r = rng(V + 5);
        const x = logits(r, N, V, 'huge');
        const y = labels(r, x, N, V, -100);
        poisonIgnoredRows(x, y, V, -100);
        const { entropy, rowStats } = forward(x, y, N, V, T, -100);
        const lse = Float64Array.from({ length: N }, (_, n) => rowStats[3 * n]! / T + rowStats[3 * n + 1]!);
        const want = Float64Array.from({ length: N }, (_, n) => {
          if (y[n] === -100) return 0;
          const row = Array.from(x.subarray(n * V, (n + 1) * V), (v) => v / T);
          const m = Math.max(...row);
          return m + Math.log(row.reduce((acc, z) => acc + Math.exp(z - m), 0));
        });
        expectClose(lse, want, { rtol: 1e-6, atol: 1e-4, label: `${isa} V=${V} lse` });
        for (let n = 0; n < N; n++) {
          if (y[n] === -100) expect(Array.from(rowStats.subarray(3 * n, 3 * n + 3))).toEqual([0, 0, 0]);
          else expect(rowStats[3 * n + 2]).toBe(entropy[n]);
        }
      }
    });
  });

  it('in place: the gradient overwrites the logits buffer and equals the out-of-place result', () => {
    onEveryIsa((isa) => {
      for (const V of [7, 1031]) {
        const N = 6;
        const r = rng(V + 99);
        const x = logits(r, N, V, 'neg-inf');
        const y = labels(r, x, N, V, -100);
        const gLp = randomVector(r, N), gH = randomVector(r, N);
        const separate = backward(x, y, gLp, gH, N, V, 0.9, -100);
        const inPlace = Float32Array.from(x);
        const result = backward(inPlace, y, gLp, gH, N, V, 0.9, -100, raw, inPlace);
        expect(result).toBe(inPlace);
        expectSameBits(inPlace, separate, `${isa} V=${V}`);
      }
    });
  });

  it('a zero incoming gradient removes its term even where the row is not finite', () => {
    onEveryIsa(() => {
      const V = 50;
      const x = new Float32Array(V).fill(Infinity);
      const g = backward(x, Int32Array.of(2), Float32Array.of(0), Float32Array.of(0), 1, V, 1, -100);
      expect(Array.from(g).every((v) => v === 0)).toBe(true);
    });
  });

  it('the rows of the gradient sum to 0 without the entropy term (softmax is shift-invariant)', () => {
    onEveryIsa(() => {
      const N = 4, V = 2000;
      const r = rng(3);
      const x = logits(r, N, V, 'wide');
      const y = labels(r, x, N, V, -100, 0);
      const g = backward(x, y, randomVector(r, N), null, N, V, 1, -100);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let v = 0; v < V; v++) s += g[n * V + v]!;
        expect(Math.abs(s)).toBeLessThan(1e-5);
      }
    });
  });
});
