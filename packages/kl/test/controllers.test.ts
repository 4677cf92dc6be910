import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { adaptiveKl, adaptiveKlController, fixedKlController } from '@rlhf/kl';
import { f32, f64, i32, kindOf, randomArray, right } from '../../kernels/test/util.js';

const positiveDouble = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

describe('fixedKlController', () => {
  it('keeps β through any update and checks the update’s arguments', () => {
    const c = right(fixedKlController(0.1));
    expect(c.kind).toBe('fixed');
    const next = right(c.update(50, 256));
    expect(next.beta).toBe(0.1);
    expect(kindOf(c.update(1, -1))).toBe('param');
    expect(kindOf(c.update(1, 1.5))).toBe('param');
    expect(kindOf(fixedKlController(-0.1))).toBe('param');
    expect(kindOf(fixedKlController(Number.NaN))).toBe('param');
  });
});

describe('adaptiveKlController', () => {
  it('keeps β when the observed KL equals the target (property)', () => {
    fc.assert(
      fc.property(positiveDouble(0, 5), positiveDouble(1e-3, 100), positiveDouble(1, 1e5), fc.nat(1e5), (init, target, horizon, n) => {
        const c = right(adaptiveKlController({ initKlCoef: init, target, horizon }));
        expect(right(c.update(target, n)).beta).toBe(init);
      }),
    );
  });

  it('moves β by e·nSteps/horizon with the proportional error clipped to ±0.2, and is pure (property)', () => {
    fc.assert(
      fc.property(positiveDouble(1e-3, 5), positiveDouble(1e-2, 10), positiveDouble(1, 1e4), fc.nat(1e4), positiveDouble(0, 100), (init, target, horizon, n, kl) => {
        const c = right(adaptiveKlController({ initKlCoef: init, target, horizon }));
        const next = right(c.update(kl, n));
        const e = Math.min(Math.max(kl / target - 1, -0.2), 0.2);
        expect(next.beta).toBeCloseTo(init * (1 + (e * n) / horizon), 12);
        if (n > 0 && kl > target) expect(next.beta).toBeGreaterThan(init);
        if (n > 0 && kl < target) expect(next.beta).toBeLessThan(init);
        expect(c.beta).toBe(init);
      }),
    );
  });

  it('saturates at ±20 % per horizon, and nSteps = 0 or β = 0 keeps β even for a NaN KL', () => {
    const c = right(adaptiveKlController({ initKlCoef: 1, target: 1, horizon: 100 }));
    expect(right(c.update(1e9, 100)).beta).toBeCloseTo(1.2, 14);
    expect(right(c.update(0, 50)).beta).toBeCloseTo(0.9, 14);
    expect(right(c.update(Number.NaN, 0)).beta).toBe(1);
    expect(Number.isNaN(right(c.update(Number.NaN, 1)).beta)).toBe(true);
    const off = right(adaptiveKlController({ initKlCoef: 0 })); // β = 0 is a factor of 0 too
    expect(right(off.update(Number.NaN, 100)).beta).toBe(0);
    expect(right(off.update(Number.POSITIVE_INFINITY, 100)).beta).toBe(0);
  });

  it('uses the SPEC defaults (0.2, 6, 10000)', () => {
    const c = right(adaptiveKlController());
    expect(c.beta).toBe(0.2);
    expect(right(c.update(12, 10000)).beta).toBeCloseTo(0.2 * 1.2, 14);
    expect(right(adaptiveKlController({ initKlCoef: null, target: null, horizon: null })).beta).toBe(0.2);
  });

  it('returns param errors outside the domains', () => {
    expect(kindOf(adaptiveKlController({ initKlCoef: -1 }))).toBe('param');
    expect(kindOf(adaptiveKlController({ target: 0 }))).toBe('param');
    expect(kindOf(adaptiveKlController({ horizon: 0 }))).toBe('param');
    expect(kindOf(adaptiveKlController({ horizon: -5 }))).toBe('param');
    expect(kindOf(right(adaptiveKlController()).update(1, -3))).toBe('param');
  });
});

describe('kl.adaptive', () => {
  it('returns β after each update, as the formula iterated (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 1e6 }), positiveDouble(0.01, 1), (S, seed, init) => {
        const target = 2;
        const horizon = 300;
        const observed = randomArray(S, 4, seed).map((x) => x + 2);
        const steps = Array.from(observed, (_, s) => (s * 37 + seed) % 64);
        const r = right(adaptiveKl({ initKlCoef: init, target, horizon })({ observedKl: f64([S], observed), nSteps: i32(steps) }));
        let beta = init;
        for (let s = 0; s < S; s++) {
          beta *= 1 + (Math.min(Math.max(observed[s]! / target - 1, -0.2), 0.2) * steps[s]!) / horizon;
          expect(r.beta.data[s]).toBeCloseTo(beta, 12);
        }
        expect(r.beta.shape).toEqual([S]);
      }),
      { numRuns: 40 },
    );
  });

  it('follows the dtype of observedKl and writes into a given buffer', () => {
    const out = new Float32Array(2);
    const r = right(adaptiveKl({}, { beta: out })({ observedKl: f32([2], [6, 12]), nSteps: i32([10, 10]) }));
    expect(r.beta.dtype).toBe('float32');
    expect(r.beta.data).toBe(out);
    expect(out[0]).toBeCloseTo(0.2, 7);
  });

  it('returns typed errors and leaves the output buffer untouched on a bad nSteps', () => {
    const kl = f32([3], [1, 2, 3]);
    const out = new Float32Array([7, 7, 7]);
    expect(kindOf(adaptiveKl({}, { beta: out })({ observedKl: kl, nSteps: i32([1, -1, 1]) }))).toBe('param');
    expect([...out]).toEqual([7, 7, 7]);
    expect(kindOf(adaptiveKl({ horizon: 0 })({ observedKl: kl, nSteps: i32([1, 1, 1]) }))).toBe('param');
    expect(kindOf(adaptiveKl({ target: -6 })({ observedKl: kl, nSteps: i32([1, 1, 1]) }))).toBe('param');
    expect(kindOf(adaptiveKl()({ observedKl: kl, nSteps: i32([1, 1]) }))).toBe('shape');
    expect(kindOf(adaptiveKl()({ observedKl: kl, nSteps: f32([3], [1, 1, 1]) as never }))).toBe('shape');
    expect(kindOf(adaptiveKl()({ observedKl: f32([1, 3], [1, 2, 3]), nSteps: i32([1, 1, 1]) }))).toBe('shape');
    expect(kindOf(adaptiveKl()({ observedKl: f32([0], []), nSteps: i32([]) }))).toBe('no error');
  });
});
