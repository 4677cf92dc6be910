import { dpo } from '@rlhf/preference';
import { call, F32, shaped, uniform } from './data.js';
import { kernelRunners } from './runners.js';
import type { Bench } from './types.js';

/** The DPO sigmoid loss on B preference pairs (summed sequence log-probs of policy and reference). */
export const dpoBench: Bench = {
  op: 'dpo',
  bytesCounted: '4·B·4 read (policy and reference log-probs) + 4·B·4 written (two gradients, two rewards)',
  shapes: (quick) => (quick ? [[33]] : [[1_000_000]]),
  setup: ([B], env) => {
    const inputs = {
      policyChosen: shaped(uniform(B!, -300, -100, 40), [B!]),
      policyRejected: shaped(uniform(B!, -300, -100, 41), [B!]),
      refChosen: shaped(uniform(B!, -300, -100, 42), [B!]),
      refRejected: shaped(uniform(B!, -300, -100, 43), [B!]),
    };
    const out = {
      gradPolicyChosen: new Float32Array(B!),
      gradPolicyRejected: new Float32Array(B!),
      rewardsChosen: new Float32Array(B!),
      rewardsRejected: new Float32Array(B!),
    };
    return {
      bytes: 8 * B! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(dpo({ beta: 0.1, lossType: 'sigmoid', backend: k }, out)(inputs))),
    };
  },
};
