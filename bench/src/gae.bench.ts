import { gae, whiten } from '@rlhf/gae';
import { call, F32, rightPaddedMask, shaped, uniform } from './data.js';
import { tokenShapes, typescriptRunners } from './runners.js';
import type { Bench } from './types.js';

/** GAE over a right-padded PPO batch (the masked recursion of SPEC §4). */
export const gaeBench: Bench = {
  op: 'gae',
  bytesCounted: '3·B·T·4 read (rewards, values, mask) + 2·B·T·4 written (advantages, returns)',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = {
      rewards: shaped(uniform(B! * T!, -0.1, 0.1, 50), [B!, T!]),
      values: shaped(uniform(B! * T!, -1, 1, 51), [B!, T!]),
      mask: shaped(rightPaddedMask(B!, T!, 52), [B!, T!]),
    };
    const out = { advantages: new Float32Array(B! * T!), returns: new Float32Array(B! * T!) };
    return {
      bytes: 5 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(gae({ gamma: 1, lambda: 0.95 }, out)(inputs))),
    };
  },
};

/** Masked whitening of the advantages (a mean pass, a variance pass, a writing pass). */
export const whitenBench: Bench = {
  op: 'whiten',
  bytesCounted: '2·B·T·4 read (x, mask) + B·T·4 written',
  shapes: tokenShapes,
  setup: ([B, T], env) => {
    const inputs = { x: shaped(uniform(B! * T!, -3, 3, 53), [B!, T!]), mask: shaped(rightPaddedMask(B!, T!, 54), [B!, T!]) };
    const out = { y: new Float32Array(B! * T!) };
    return {
      bytes: 3 * B! * T! * F32,
      reference: 'copy',
      runners: typescriptRunners(env, () => call(whiten({ shiftMean: true }, out)(inputs))),
    };
  },
};
