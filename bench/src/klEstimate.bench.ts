import { klEstimate, shapeRewards } from '@rlhf/kl';
import { call, F32, rightPaddedMask, shaped, uniform } from './data.js';
import { tokenShapes, typescriptRunners } from './runners.js';
import type { Bench } from './types.js';

const logprobPair = (B: number, T: number) => {
  const refLogprobs = uniform(B * T, -4, 0, 70);
  const step = uniform(B * T, -0.5, 0.5, 71);
  return { logprobs: shaped(refLogprobs.map((x, i) => x + step[i]!), [B, T]), refLogprobs: shaped(refLogprobs, [B, T]) };
};

/** The k3 estimator with OpenRLHF's clamp, and its gradient, per token. */
export const klEstimateBench: Bench = {
  op: 'kl.estimate',
  bytesCounted: '2·B·T·4 read (logprobs, refLogprobs) + 2·B·T·4 written (kl, gradLogprobs)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = logprobPair(B!, T!);
    const out = { kl: new Float32Array(B! * T!), gradLogprobs: new Float32Array(B! * T!) };
    return {
      bytes: 4 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(klEstimate({ estimator: 'k3', clamp: 10 }, out)(inputs))),
    };
  },
};

/** KL-penalised per-token rewards with the score at each row's last valid token. */
export const shapeRewardsBench: Bench = {
  op: 'kl.shapeRewards',
  bytesCounted: '3·B·T·4 + B·4 read (logprobs, refLogprobs, mask, scores) + 2·B·T·4 written (rewards, nonScoreRewards)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = {
      ...logprobPair(B!, T!),
      scores: shaped(uniform(B!, -2, 2, 72), [B!]),
      mask: shaped(rightPaddedMask(B!, T!, 73), [B!, T!]),
    };
    const out = { rewards: new Float32Array(B! * T!), nonScoreRewards: new Float32Array(B! * T!) };
    return {
      bytes: 5 * B! * T! * F32 + B! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(shapeRewards({ beta: 0.05, estimator: 'k1' }, out)(inputs))),
    };
  },
};
