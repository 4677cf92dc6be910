import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { js } from '@rlhf/kernels';
import { maxScaledError, numericGradient } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right } from './util.js';

describe('logsoftmax (js)', () => {
  it('rows exponentiate to a distribution; −∞ stays −∞', () => {
    const { logsoftmax } = right(js.logsoftmax({ temperature: 2 })({ logits: f32([2, 3], [1e4, 0, -Infinity, 1, 2, 3]) }));
    for (let n = 0; n < 2; n++) {
      const s = Array.from(logsoftmax.data.subarray(n * 3, n * 3 + 3)).reduce((a, v) => a + Math.exp(v), 0);
      expect(s).toBeCloseTo(1, 6);
    }
    expect(logsoftmax.data[2]).toBe(-Infinity);
  });

  it('its backward agrees with finite differences of Σ g·logsoftmax (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 0, max: 1e6 }), (V, seed) => {
        const N = 2;
        const T = 0.6 + (seed % 5) / 3;
        const x = randomArray(N * V, 3, seed);
        const g = randomArray(N * V, 1, seed + 1);
        const f = (y: Float64Array) =>
          right(js.logsoftmax({ temperature: T })({ logits: f64([N, V], y) })).logsoftmax.data.reduce((s, v, i) => s + v * g[i]!, 0);
        const { gradLogits } = right(js.logsoftmaxBackward({ temperature: T })({ logits: f64([N, V], x), gradOutput: f64([N, V], g) }));
        expect(maxScaledError(gradLogits.data, numericGradient(f, Float64Array.from(x)), 1e-5, 1e-7)).toBeLessThan(1);
      }),
      { numRuns: 40 },
    );
  });

  it('rejects a gradient of another shape and a bad temperature', () => {
    const logits = f32([2, 2], [0, 0, 0, 0]);
    expect(kindOf(js.logsoftmaxBackward()({ logits, gradOutput: f32([4], [0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(js.logsoftmax({ temperature: Infinity })({ logits }))).toBe('param');
  });
});
