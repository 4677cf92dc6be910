import { describe, expect, it } from 'vitest';
import { adam, clipGradNorm, globalGradNorm, warmupCosine, warmupLinear, type Parameter } from '@rlhf/trainers';
import { left, right } from './helpers.js';

const param = (values: number[]): Parameter => ({
  name: 'w',
  shape: [values.length],
  value: Float64Array.from(values),
  grad: new Float64Array(values.length),
});

describe('Adam', () => {
  it('minimises a quadratic', () => {
    const w = param([3, -2, 0.5]);
    const target = [1, 1, -1];
    const opt = right(adam([w], { lr: 0.05 }));
    const loss = () => w.value.reduce((s, x, i) => s + (x - target[i]!) ** 2, 0);
    const start = loss();
    for (let i = 0; i < 500; i++) {
      w.value.forEach((x, k) => (w.grad[k] = 2 * (x - target[k]!)));
      opt.step();
    }
    expect(loss()).toBeLessThan(1e-4 * start);
    expect(opt.stepCount()).toBe(500);
  });

  it('takes a first step of lr·g/(|g| + ε) per coordinate (bias-corrected moments) and zeroes the gradients', () => {
    const w = param([1, 1]);
    w.grad.set([0.5, -4]);
    const opt = right(adam([w], { lr: 0.1, eps: 1e-8 }));
    opt.step();
    expect(w.value[0]).toBeCloseTo(1 - 0.1 * (0.5 / (0.5 + 1e-8)), 12);
    expect(w.value[1]).toBeCloseTo(1 + 0.1 * (4 / (4 + 1e-8)), 12);
    expect(Array.from(w.grad)).toEqual([0, 0]);
  });

  it('clips the global gradient norm before stepping and reports the norm before clipping', () => {
    const a = param([0, 0]);
    const b = param([0]);
    a.grad.set([3, 0]);
    b.grad.set([4]);
    expect(globalGradNorm([a, b])).toBe(5);
    expect(clipGradNorm([a, b], 1)).toBe(5);
    expect(globalGradNorm([a, b])).toBeCloseTo(1, 5);
    a.grad.set([3, 0]);
    b.grad.set([4]);
    const stats = right(adam([a, b], { lr: 0.1, maxGradNorm: 1 })).step();
    expect(stats.gradNorm).toBe(5);
  });

  it('skips a step whose gradient is not finite', () => {
    const w = param([1]);
    w.grad[0] = NaN;
    const opt = right(adam([w], { lr: 0.1 }));
    expect(opt.step().skipped).toBe(true);
    expect(w.value[0]).toBe(1);
    expect(opt.stepCount()).toBe(0);
  });

  it('follows a schedule of the step and restores its state exactly', () => {
    const schedule = right(warmupLinear({ lr: 1, warmupSteps: 2, totalSteps: 6 }));
    expect([0, 1, 2, 4, 6, 9].map(schedule)).toEqual([0.5, 1, 1, 0.5, 0, 0]);
    const cosine = right(warmupCosine({ lr: 1, totalSteps: 4, minLr: 0.2 }));
    expect(cosine(0)).toBe(1);
    expect(cosine(2)).toBeCloseTo(0.6, 12);
    expect(cosine(4)).toBeCloseTo(0.2, 12);
    const run = (split: boolean) => {
      const w = param([2, -1]);
      let opt = right(adam([w], { lr: schedule }));
      for (let i = 0; i < 5; i++) {
        if (split && i === 3) {
          const state = opt.state();
          opt = right(adam([w], { lr: schedule }));
          right(opt.restore(state));
        }
        w.grad.set([w.value[0]! - 0.3, 2 * w.value[1]!]);
        opt.step();
      }
      return Array.from(w.value);
    };
    expect(run(true)).toEqual(run(false));
  });

  it('rejects parameters outside their domain', () => {
    expect(left(adam([], { lr: -1 })).kind).toBe('param');
    expect(left(adam([], { lr: 0.1, beta1: 1 })).kind).toBe('param');
    expect(left(adam([], { lr: 0.1, maxGradNorm: 0 })).kind).toBe('param');
    expect(left(warmupLinear({ lr: 1, warmupSteps: 5, totalSteps: 5 })).kind).toBe('param');
    expect(left(right(adam([param([1])], { lr: 0.1 })).restore({ step: 1, m: [], v: [] })).kind).toBe('shape');
  });
});
