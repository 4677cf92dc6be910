import { describe, expect, it } from 'vitest';
import { VOCABS, expectClose, logits, onEveryIsa, randomVector, reference, requireNative, rng, rowsFor, type LogitsStyle } from './helpers.js';

const raw = requireNative();
const STYLES: readonly LogitsStyle[] = ['normal', 'wide', 'huge', 'neg-inf'];

const logsoftmax = (x: Float32Array, N: number, V: number, temperature: number, kernels = raw) => {
  const out = new Float32Array(N * V);
  kernels.logsoftmax({ logits: x, N, V, temperature, logsoftmax: out });
  return out;
};

const logsoftmaxBackward = (x: Float32Array, g: Float32Array, N: number, V: number, temperature: number, kernels = raw) => {
  const out = new Float32Array(N * V);
  kernels.logsoftmaxBackward({ logits: x, gradOutput: g, N, V, temperature, gradLogits: out });
  return out;
};

describe('logsoftmax: cpu matches js', () => {
  it.each(VOCABS)('V = %i, every ISA, logit styles and temperatures', (V) => {
    const N = rowsFor(V);
    onEveryIsa((isa) => {
      for (const style of STYLES)
        for (const temperature of [1, 0.5, 3]) {
          const x = logits(rng(V + style.length + temperature), N, V, style);
          // Entries of order 1e4 carry float32 rounding of z itself (ulp(1e4) ≈ 1e-3): relative tolerance covers it.
          expectClose(logsoftmax(x, N, V, temperature), logsoftmax(x, N, V, temperature, reference), {
            label: `${isa} V=${V} ${style} T=${temperature}`,
          });
        }
    });
  });

  it('−∞ logits give −∞, and a row of one entry gives 0', () => {
    onEveryIsa(() => {
      const x = Float32Array.of(1, -Infinity, 2, -Infinity, 0.5);
      const out = logsoftmax(x, 1, 5, 1);
      expect(out[1]).toBe(-Infinity);
      expect(out[3]).toBe(-Infinity);
      expectClose(logsoftmax(Float32Array.of(123.5, -7), 2, 1, 0.3), [0, 0], { atol: 1e-6 });
    });
  });
});

describe('logsoftmax backward: cpu matches js', () => {
  it.each(VOCABS)('V = %i, every ISA', (V) => {
    const N = rowsFor(V);
    onEveryIsa((isa) => {
      for (const style of STYLES)
        for (const temperature of [1, 0.8]) {
          const r = rng(V * 7 + style.length + temperature);
          const x = logits(r, N, V, style);
          const g = randomVector(r, N * V);
          expectClose(logsoftmaxBackward(x, g, N, V, temperature), logsoftmaxBackward(x, g, N, V, temperature, reference), {
            label: `${isa} V=${V} ${style} T=${temperature}`,
          });
        }
    });
  });

  it('where p = 0 (a −∞ logit) the gradient is g itself, even when Σg is infinite', () => {
    onEveryIsa(() => {
      const x = Float32Array.of(0, -Infinity, 1);
      const g = Float32Array.of(1, 2, Infinity);
      const out = logsoftmaxBackward(x, g, 1, 3, 1);
      expect(out[1]).toBe(2);
    });
  });
});
