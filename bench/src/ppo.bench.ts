import { policyLoss, ppoLoss, valueLoss } from '@rlhf/ppo';
import { call, F32, rightPaddedMask, shaped, uniform } from './data.js';
import { tokenShapes, typescriptRunners } from './runners.js';
import type { Bench } from './types.js';

const policyInputs = (B: number, T: number) => {
  const oldLogprobs = uniform(B * T, -4, 0, 60);
  const step = uniform(B * T, -0.3, 0.3, 61);
  return {
    logprobs: shaped(oldLogprobs.map((x, i) => x + step[i]!), [B, T]),
    oldLogprobs: shaped(oldLogprobs, [B, T]),
    advantages: shaped(uniform(B * T, -2, 2, 62), [B, T]),
    mask: shaped(rightPaddedMask(B, T, 63), [B, T]),
  };
};

const valueInputs = (B: number, T: number) => ({
  values: shaped(uniform(B * T, -1, 1, 64), [B, T]),
  oldValues: shaped(uniform(B * T, -1, 1, 65), [B, T]),
  returns: shaped(uniform(B * T, -1, 1, 66), [B, T]),
});

/** The clipped PPO surrogate with its gradient over a right-padded batch. */
export const ppoPolicyBench: Bench = {
  op: 'ppo.policy',
  bytesCounted: '4·B·T·4 read (logprobs, oldLogprobs, advantages, mask) + B·T·4 written (gradLogprobs)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = policyInputs(B!, T!);
    const out = { gradLogprobs: new Float32Array(B! * T!) };
    return {
      bytes: 5 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(policyLoss({ clipLow: 0.2, dualClip: 3 }, out)(inputs))),
    };
  },
};

/** The clipped value loss with its gradient. */
export const ppoValueBench: Bench = {
  op: 'ppo.value',
  bytesCounted: '4·B·T·4 read (values, oldValues, returns, mask) + B·T·4 written (gradValues)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = { ...valueInputs(B!, T!), mask: shaped(rightPaddedMask(B!, T!, 67), [B!, T!]) };
    const out = { gradValues: new Float32Array(B! * T!) };
    return {
      bytes: 5 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(valueLoss({ clipRange: 0.2 }, out)(inputs))),
    };
  },
};

/** The whole objective: surrogate + value loss + entropy bonus, with their gradients. */
export const ppoLossBench: Bench = {
  op: 'ppo.loss',
  bytesCounted: '8·B·T·4 read (policy and value inputs, entropy, mask) + 3·B·T·4 written (three gradients)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = { ...policyInputs(B!, T!), ...valueInputs(B!, T!), entropy: shaped(uniform(B! * T!, 0, 3, 68), [B!, T!]) };
    const out = {
      gradLogprobs: new Float32Array(B! * T!),
      gradValues: new Float32Array(B! * T!),
      gradEntropy: new Float32Array(B! * T!),
    };
    return {
      bytes: 11 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(ppoLoss({ valueCoef: 0.5, entropyCoef: 0.01 }, out)(inputs))),
    };
  },
};
