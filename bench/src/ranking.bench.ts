import { ranking } from '@rlhf/preference';
import { call, F32, permutations, shaped, uniform } from './data.js';
import { kernelRunners } from './runners.js';
import type { Bench } from './types.js';

/** The InstructGPT K-way ranking loss: B prompts of K ranked responses, C(K,2) pairs each. */
export const rankingBench: Bench = {
  op: 'ranking',
  bytesCounted: 'B·K·4 read (rewards) + B·K·4 read (ranks) + B·K·4 written (grad)',
  shapes: (quick) => (quick ? [[16, 4]] : [[100_000, 8]]),
  setup: ([B, K], env) => {
    const inputs = { rewards: shaped(uniform(B! * K!, -2, 2, 20), [B!, K!]), ranks: shaped(permutations(B!, K!, 21), [B!, K!]) };
    const out = { grad: new Float32Array(B! * K!) };
    return {
      bytes: 3 * B! * K! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(ranking({ backend: k }, out)(inputs))),
    };
  },
};
