import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { js } from '@rlhf/kernels';
import { fromArray, unsafeTensor, type IntTensor } from '@rlhf/tensor';
import {
  rng,
  tokenLogprobs,
  windowMlpPolicy,
  windowMlpReward,
  windowMlpValue,
  zeroGrad,
  type Parameter,
  type Trainable,
} from '@rlhf/trainers';
import { left, right } from './helpers.js';

const config = { vocabSize: 5, window: 2, embedDim: 3, hidden: 4 };
const tokens = right(fromArray('int32', [1, 2, 3, 4, 0, 0, 4, 3, 2, 1], [2, 5])) as IntTensor;
const mask = right(fromArray('float32', [0, 1, 1, 1, 1, 0, 0, 1, 1, 0], [2, 5]));

/**
 * Checks every parameter gradient that `lossAndBackward` accumulates against central finite
 * differences of `loss` (float64, a sample of entries per parameter).
 */
const checkGradients = (model: Trainable, loss: () => number, backward: () => void) => {
  zeroGrad(model);
  backward();
  const h = 1e-6;
  let checked = 0;
  for (const p of model.parameters as Parameter[]) {
    const grad = p.grad.slice();
    for (let i = 0; i < p.value.length; i += Math.max(1, Math.floor(p.value.length / 7))) {
      const x = p.value[i]!;
      p.value[i] = x + h;
      const up = loss();
      p.value[i] = x - h;
      const down = loss();
      p.value[i] = x;
      const numeric = (up - down) / (2 * h);
      expect(Math.abs(grad[i]! - numeric)).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
      checked++;
    }
    expect(grad.some((g) => g !== 0)).toBe(true); // the gradient reaches every parameter
  }
  expect(checked).toBeGreaterThan(10);
};

describe('window MLP models', () => {
  it('policy backward through the logprobs kernels matches finite differences (log-prob and entropy terms)', () => {
    const policy = right(windowMlpPolicy(config, rng(1)));
    // Perturb the zero-initialised output layer so every path carries gradient.
    policy.parameters.forEach((p, k) => p.value.forEach((_, i) => (p.value[i] += 0.3 * Math.sin(1 + i * 7 + k))));
    const lp = tokenLogprobs(policy, js);
    const wLp = Float64Array.from({ length: 10 }, (_, i) => Math.cos(i));
    const wH = Float64Array.from({ length: 10 }, (_, i) => 0.5 * Math.sin(i));
    const loss = () => {
      const o = right(lp(tokens, mask));
      let s = 0;
      for (let i = 0; i < 10; i++) s += wLp[i]! * o.logprobs.data[i]! + wH[i]! * o.entropy.data[i]!;
      return s;
    };
    checkGradients(policy, loss, () => {
      const o = right(lp(tokens, mask));
      right(o.backward(unsafeTensor('float64', [2, 5], wLp), unsafeTensor('float64', [2, 5], wH)));
    });
  });

  it('logits at masked positions are ignored: log-probs and entropy are 0 there', () => {
    const policy = right(windowMlpPolicy(config, rng(2)));
    const o = right(tokenLogprobs(policy, js)(tokens, mask));
    mask.data.forEach((m, i) => {
      if (m === 0) expect([o.logprobs.data[i], o.entropy.data[i]]).toEqual([0, 0]);
      else expect(o.logprobs.data[i]).toBeLessThan(0);
    });
  });

  it('value and reward backward match finite differences', () => {
    const value = right(windowMlpValue(config, rng(3)));
    const reward = right(windowMlpReward(config, rng(4)));
    for (const m of [value, reward]) m.parameters.forEach((p, k) => p.value.forEach((_, i) => (p.value[i] += 0.2 * Math.cos(i + k))));
    const wV = Float64Array.from({ length: 10 }, (_, i) => i - 3);
    checkGradients(
      value,
      () => right(value.values(tokens)).output.data.reduce((s, v, i) => s + v * wV[i]!, 0),
      () => right(right(value.values(tokens)).backward(unsafeTensor('float64', [2, 5], wV))),
    );
    const wR = Float64Array.of(1.5, -0.7);
    checkGradients(
      reward,
      () => right(reward.scores(tokens, mask)).output.data.reduce((s, v, i) => s + v * wR[i]!, 0),
      () => right(right(reward.scores(tokens, mask)).backward(unsafeTensor('float64', [2], wR))),
    );
  });

  it('the policy is causal: logits at position t do not depend on tokens at or after t', () => {
    const policy = right(windowMlpPolicy(config, rng(5)));
    policy.parameters.forEach((p) => p.value.forEach((_, i) => (p.value[i] += 0.1 * Math.sin(i))));
    const a = right(policy.logits(tokens)).output.data;
    const changed = right(fromArray('int32', [1, 2, 0, 0, 0, 0, 4, 3, 2, 1], [2, 5])) as IntTensor;
    const b = right(policy.logits(changed)).output.data;
    // Row 2 (position 2 of sequence 0) sees tokens 0..1 only.
    expect(Array.from(b.subarray(2 * 5, 3 * 5))).toEqual(Array.from(a.subarray(2 * 5, 3 * 5)));
    expect(Array.from(b.subarray(3 * 5, 4 * 5))).not.toEqual(Array.from(a.subarray(3 * 5, 4 * 5)));
  });

  it('rejects tokens outside the vocabulary, bad configs and gradients of the wrong shape', () => {
    const policy = right(windowMlpPolicy(config, rng(6)));
    expect(left(policy.logits(right(fromArray('int32', [0, 5], [1, 2])) as IntTensor)).kind).toBe('index');
    expect(left(windowMlpPolicy({ ...config, hidden: 0 }, rng(1))).kind).toBe('param');
    const f = right(policy.logits(tokens));
    expect(left(f.backward(unsafeTensor('float64', [3, 5], new Float64Array(15)))).kind).toBe('shape');
    expect(E.isRight(f.backward(unsafeTensor('float64', [10, 5], new Float64Array(50))))).toBe(true);
  });
});
