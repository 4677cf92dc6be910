import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gae } from '@rlhf/gae';
import type { MaskTensor } from '@rlhf/tensor';
import { f32, f64, kindOf, randomArray, right, rng } from '../../kernels/test/util.js';

const bits = (n: number, p: number, seed: number): number[] => {
  const r = rng(seed);
  return Array.from({ length: n }, () => (r() < p ? 1 : 0));
};
const u8 = (shape: number[], values: number[]): MaskTensor => ({ dtype: 'uint8', shape, data: Uint8Array.from(values) });
const unit = fc.double({ min: 0, max: 1, noNaN: true });

/** TRL's loop: every position of the row, values and rewards zero-filled after the row's length. */
const trlGae = (rewards: number[], values: number[], gamma: number, lambda: number): number[] => {
  const advantages = new Array<number>(rewards.length).fill(0);
  let last = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    const next = t + 1 < rewards.length ? values[t + 1]! : 0;
    const delta = rewards[t]! + gamma * next - values[t]!;
    last = delta + gamma * lambda * last;
    advantages[t] = last;
  }
  return advantages;
};

describe('gae', () => {
  it('with γ = λ = 1 and no mask or dones, advantages are reward-to-go minus value (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1e6 }), (B, T, seed) => {
        const rewards = randomArray(B * T, 2, seed);
        const values = randomArray(B * T, 2, seed + 1);
        const r = right(gae({ gamma: 1, lambda: 1 })({ rewards: f64([B, T], rewards), values: f64([B, T], values) }));
        for (let b = 0; b < B; b++) {
          let toGo = 0;
          for (let t = T - 1; t >= 0; t--) {
            const i = b * T + t;
            toGo += rewards[i]!;
            expect(r.advantages.data[i]).toBeCloseTo(toGo - values[i]!, 10);
            expect(r.returns.data[i]).toBeCloseTo(toGo, 10);
          }
        }
      }),
    );
  });

  it('skips masked positions: a row with holes equals its valid positions run as one row (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 14 }), fc.integer({ min: 0, max: 1e6 }), unit, unit, (T, seed, gamma, lambda) => {
        const mask = bits(T, 0.6, seed);
        const done = bits(T, 0.2, seed + 1);
        const rewards = randomArray(T, 2, seed + 2);
        const values = randomArray(T, 2, seed + 3);
        const boot = randomArray(1, 2, seed + 4);
        const r = right(
          gae({ gamma, lambda })({
            rewards: f64([1, T], rewards),
            values: f64([1, T], values),
            mask: f64([1, T], mask),
            dones: f64([1, T], done),
            bootstrapValues: f64([1], boot),
          }),
        );
        const valid = [...Array(T).keys()].filter((t) => mask[t]);
        const n = valid.length;
        const pick = (x: ArrayLike<number>) => valid.map((t) => x[t]!);
        const compact =
          n === 0
            ? undefined
            : right(
                gae({ gamma, lambda })({
                  rewards: f64([1, n], pick(rewards)),
                  values: f64([1, n], pick(values)),
                  dones: f64([1, n], pick(done)),
                  bootstrapValues: f64([1], boot),
                }),
              );
        for (let t = 0; t < T; t++) {
          const k = valid.indexOf(t);
          expect(r.advantages.data[t]).toBeCloseTo(k < 0 ? 0 : compact!.advantages.data[k]!, 10);
          expect(r.returns.data[t]).toBeCloseTo(k < 0 ? 0 : compact!.returns.data[k]!, 10);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('equals TRL’s zero-filled loop on right-padded rows (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1e6 }), unit, unit, (T, seed, gamma, lambda) => {
        const length = 1 + (seed % T);
        const rewards = Array.from(randomArray(T, 2, seed), (x, t) => (t < length ? x : 0));
        const values = Array.from(randomArray(T, 2, seed + 1), (x, t) => (t < length ? x : 0));
        const mask = Array.from({ length: T }, (_, t) => (t < length ? 1 : 0));
        const r = right(gae({ gamma, lambda })({ rewards: f64([1, T], rewards), values: f64([1, T], values), mask: f64([1, T], mask) }));
        const expected = trlGae(rewards.slice(0, length), values.slice(0, length), gamma, lambda);
        for (let t = 0; t < length; t++) expect(r.advantages.data[t]).toBeCloseTo(expected[t]!, 10);
      }),
    );
  });

  it('never lets NaN or ±Inf at masked positions, or the bootstrap of an empty row, reach an output (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 1e6 }),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        (B, T, seed, poison) => {
          const mask = bits(B * T, 0.5, seed);
          const dones = bits(B * T, 0.2, seed + 1);
          const rewards = randomArray(B * T, 2, seed + 2);
          const values = randomArray(B * T, 2, seed + 3);
          const boot = randomArray(B, 2, seed + 4);
          const emptyRow = (b: number) => mask.slice(b * T, (b + 1) * T).every((m) => m === 0);
          const run = (p: number) => {
            const at = (x: ArrayLike<number>) => Array.from(x, (v, i) => (mask[i] ? v : p));
            return right(
              gae({ gamma: 0.9, lambda: 0.8 })({
                rewards: f64([B, T], at(rewards)),
                values: f64([B, T], at(values)),
                mask: f64([B, T], mask),
                dones: f64([B, T], at(dones)),
                bootstrapValues: f64([B], Array.from(boot, (v, b) => (emptyRow(b) ? p : v))),
              }),
            );
          };
          const clean = run(0);
          const dirty = run(poison);
          expect([...dirty.advantages.data]).toEqual([...clean.advantages.data]);
          expect([...dirty.returns.data]).toEqual([...clean.returns.data]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a done cuts the row: each episode is GAE of its own, the last bootstrapping', () => {
    const rewards = [1, 2, 3, 4, 5];
    const values = [0.5, -0.5, 1, 2, -1];
    const run = (r: number[], v: number[], dones: number[], boot: number) =>
      right(
        gae({ gamma: 0.9, lambda: 0.7 })({
          rewards: f64([1, r.length], r),
          values: f64([1, v.length], v),
          dones: f64([1, dones.length], dones),
          bootstrapValues: f64([1], [boot]),
        }),
      ).advantages.data;
    const whole = run(rewards, values, [0, 1, 0, 0, 0], 3);
    const first = run(rewards.slice(0, 2), values.slice(0, 2), [0, 1], Number.POSITIVE_INFINITY);
    const second = run(rewards.slice(2), values.slice(2), [0, 0, 0], 3);
    [...first, ...second].forEach((a, t) => expect(whole[t]).toBeCloseTo(a, 12));
  });

  it('factors of exactly 0 remove their terms even next to non-finite values', () => {
    const inf = Number.POSITIVE_INFINITY;
    const rewards = f64([1, 3], [1, 2, 3]);
    const values = f64([1, 3], [0.5, 1, 1.5]);
    // γ = 0: one-step rewards minus values, an infinite bootstrap never read.
    const g0 = right(gae({ gamma: 0 })({ rewards, values, bootstrapValues: f64([1], [inf]) }));
    expect([...g0.advantages.data]).toEqual([0.5, 1, 1.5]);
    // A done at the last step with an infinite bootstrap.
    const done = right(gae({ gamma: 0.9 })({ rewards, values, dones: f64([1, 3], [0, 0, 1]), bootstrapValues: f64([1], [inf]) }));
    expect(done.advantages.data.every(Number.isFinite)).toBe(true);
    // λ = 0: one-step TD errors.
    const l0 = right(gae({ gamma: 0.5, lambda: 0 })({ rewards, values }));
    expect([...l0.advantages.data]).toEqual([1 + 0.5 * 1 - 0.5, 2 + 0.5 * 1.5 - 1, 3 - 1.5]);
  });

  it('treats float32, float64 and uint8 masks and dones alike, and follows the float dtype', () => {
    const rewards = f32([2, 4], randomArray(8, 1, 5));
    const values = f32([2, 4], randomArray(8, 1, 6));
    const m = [1, 0, 1, 1, 0, 1, 1, 0];
    const d = [0, 0, 1, 0, 0, 1, 0, 0];
    const a = right(gae()({ rewards, values, mask: u8([2, 4], m), dones: u8([2, 4], d) }));
    const b = right(gae()({ rewards, values, mask: f64([2, 4], m), dones: f32([2, 4], d) }));
    expect([...a.advantages.data]).toEqual([...b.advantages.data]);
    expect(a.advantages.dtype).toBe('float32');
    const out = { advantages: new Float32Array(8), returns: new Float32Array(8) };
    expect(right(gae({}, out)({ rewards, values })).returns.data).toBe(out.returns);
  });

  it('returns typed errors', () => {
    const x = f32([2, 3], randomArray(6, 1, 1));
    expect(kindOf(gae({ gamma: 1.5 })({ rewards: x, values: x }))).toBe('param');
    expect(kindOf(gae({ lambda: -0.1 })({ rewards: x, values: x }))).toBe('param');
    expect(kindOf(gae({ gamma: Number.NaN })({ rewards: x, values: x }))).toBe('param');
    expect(kindOf(gae()({ rewards: x, values: f32([3, 2], randomArray(6, 1, 1)) }))).toBe('shape');
    expect(kindOf(gae()({ rewards: x, values: f64([2, 3], randomArray(6, 1, 1)) }))).toBe('shape');
    expect(kindOf(gae()({ rewards: f32([6], randomArray(6, 1, 1)), values: f32([6], randomArray(6, 1, 1)) }))).toBe('shape');
    expect(kindOf(gae()({ rewards: x, values: x, bootstrapValues: f32([3], [0, 0, 0]) }))).toBe('shape');
    expect(kindOf(gae()({ rewards: x, values: x, mask: { dtype: 'int32', shape: [2, 3], data: new Int32Array(6) } as never }))).toBe('shape');
    expect(kindOf(gae()({ rewards: x, values: x, dones: f32([2, 2], [0, 0, 0, 0]) }))).toBe('shape');
    expect(kindOf(gae({ gamma: null, lambda: null })({ rewards: x, values: x, mask: null, dones: null, bootstrapValues: null }))).toBe('no error');
  });
});
