import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { js } from '@rlhf/kernels';
import { f32, f64, i32, kindOf, randomArray, right } from './util.js';

describe('logprobs (js)', () => {
  it('matches log-softmax at the label and the entropy of the row, in float64', () => {
    const V = 5;
    const x = randomArray(2 * V, 3, 1);
    const { logprobs, entropy } = right(js.logprobs({ temperature: 0.7 })({ logits: f64([2, V], x), labels: i32([3, 0]) }));
    for (let n = 0; n < 2; n++) {
      const z = Array.from(x.subarray(n * V, n * V + V), (v) => v / 0.7);
      const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
      const p = z.map((v) => Math.exp(v - lse));
      expect(logprobs.data[n]).toBeCloseTo(z[[3, 0][n]!]! - lse, 12);
      expect(entropy.data[n]).toBeCloseTo(-p.reduce((s, pv, v) => s + pv * (z[v]! - lse), 0), 12);
    }
  });

  it('keeps logprobs ≤ 0 and 0 ≤ entropy ≤ log V on any row (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1e6 }), fc.double({ min: 0.1, max: 5, noNaN: true }), (V, seed, T) => {
        const x = randomArray(V, 20, seed);
        const { logprobs, entropy } = right(js.logprobs({ temperature: T })({ logits: f64([1, V], x), labels: i32([seed % V]) }));
        expect(logprobs.data[0]).toBeLessThanOrEqual(1e-12);
        expect(entropy.data[0]).toBeGreaterThanOrEqual(-1e-12);
        expect(entropy.data[0]).toBeLessThanOrEqual(Math.log(V) + 1e-9);
      }),
    );
  });

  it('handles ±1e4 logits and −∞ entries without NaN', () => {
    const logits = f32([2, 4], [1e4, -1e4, 0, -Infinity, -Infinity, 2, -Infinity, 1]);
    const { logprobs, entropy } = right(js.logprobs()({ logits, labels: i32([0, 1]) }));
    expect(logprobs.data[0]).toBe(0);
    expect(entropy.data[0]).toBe(0);
    expect(logprobs.data[1]).toBeCloseTo(2 - Math.log(Math.exp(2) + Math.exp(1)), 6);
    expect(Number.isFinite(entropy.data[1]!)).toBe(true);
    const masked = right(js.logprobs()({ logits: f32([1, 3], [0, -Infinity, 0]), labels: i32([1]) }));
    expect(masked.logprobs.data[0]).toBe(-Infinity);
  });

  it('keeps the digits of x − max when |x/T| is huge (1e15): p = [½, ½, 0] for logits [b, b, 0]', () => {
    for (const [b, T] of [[1e15, 1], [1e11, 0.01], [-1e15, 1]] as const) {
      const logits = f32([1, 3], [b, b, 0]);
      const top = b > 0 ? [0.5, 0.5, 0] : [0, 0, 1];
      const { logprobs, entropy, rowStats } = right(js.logprobs({ temperature: T })({ logits, labels: i32([0]) }));
      expect(logprobs.data[0]).toBe(b > 0 ? Math.fround(-Math.LN2) : Math.fround(b / T));
      expect(entropy.data[0]).toBeCloseTo(b > 0 ? Math.LN2 : 0, 6);
      const { logsoftmax } = right(js.logsoftmax({ temperature: T })({ logits }));
      expect(Array.from(logsoftmax.data, Math.exp)).toEqual(top.map((p) => expect.closeTo(p, 6)));
      for (const saved of [undefined, rowStats]) {
        const { gradLogits } = right(
          js.logprobsBackward({ temperature: T })({ logits, labels: i32([0]), gradLogprobs: f32([1], [1]), rowStats: saved }),
        );
        expect(Array.from(gradLogits.data, (g) => g * T)).toEqual([1 - top[0]!, -top[1]!, -top[2]!].map((g) => expect.closeTo(g, 6)));
      }
      const { kl } = right(js.klFull({ temperature: T })({ logitsP: logits, logitsQ: f32([1, 3], [b, b, b]) }));
      expect(kl.data[0]).toBeCloseTo(Math.log(b > 0 ? 1.5 : 3), 6);
    }
  });

  it('outputs 0 for ignored rows even when their logits are NaN', () => {
    const logits = f32([2, 3], [NaN, NaN, Infinity, 1, 2, 3]);
    const { logprobs, entropy } = right(js.logprobs({ ignoreIndex: -1 })({ logits, labels: i32([-1, 2]) }));
    expect([logprobs.data[0], entropy.data[0]]).toEqual([0, 0]);
    expect(Number.isFinite(logprobs.data[1]!)).toBe(true);
  });

  it('writes into the caller’s buffers and follows the input dtype', () => {
    const out = { logprobs: new Float32Array(1), entropy: new Float32Array(1) };
    const r = right(js.logprobs(undefined, out)({ logits: f32([1, 2], [0, 0]), labels: i32([1]) }));
    expect(r.logprobs.data).toBe(out.logprobs);
    expect(r.logprobs.dtype).toBe('float32');
    expect(out.entropy[0]).toBeCloseTo(Math.log(2), 6);
  });

  it('returns typed errors for every kind of bad input', () => {
    const logits = f32([2, 3], [0, 0, 0, 0, 0, 0]);
    expect(kindOf(js.logprobs()({ logits, labels: i32([0]) }))).toBe('shape');
    expect(kindOf(js.logprobs()({ logits, labels: i32([0, 3]) }))).toBe('index');
    expect(kindOf(js.logprobs()({ logits, labels: i32([0, -5]) }))).toBe('index');
    expect(kindOf(js.logprobs({ temperature: 0 })({ logits, labels: i32([0, 1]) }))).toBe('param');
    expect(kindOf(js.logprobs({ temperature: -1 })({ logits, labels: i32([0, 1]) }))).toBe('param');
    expect(kindOf(js.logprobs()({ logits: f32([2, 0], []), labels: i32([0, 1]) }))).toBe('shape');
    expect(kindOf(js.logprobs()({ logits, labels: { dtype: 'float32', shape: [2], data: new Float32Array(2) } as never }))).toBe('shape');
    expect(kindOf(js.logprobs(undefined, { logprobs: new Float32Array(1) })({ logits, labels: i32([0, 1]) }))).toBe('shape');
    expect(kindOf(js.logprobs()(undefined as never))).toBe('shape');
  });
});
