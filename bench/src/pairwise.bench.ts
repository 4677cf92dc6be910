import { pairwise } from '@rlhf/preference';
import { call, F32, shaped, uniform } from './data.js';
import { kernelRunners } from './runners.js';
import type { Bench } from './types.js';

/** Bradley–Terry on B pairs with a margin, label smoothing and reward centering (every term on). */
export const pairwiseBench: Bench = {
  op: 'pairwise',
  bytesCounted: '3·B·4 read (chosen, rejected, margin) + 2·B·4 written (two gradients)',
  shapes: (quick) => (quick ? [[33]] : [[1_000_000]]),
  setup: ([B], env) => {
    const inputs = {
      chosen: shaped(uniform(B!, -2, 2, 30), [B!]),
      rejected: shaped(uniform(B!, -2, 2, 31), [B!]),
      margin: shaped(uniform(B!, 0, 0.5, 32), [B!]),
    };
    const out = { gradChosen: new Float32Array(B!), gradRejected: new Float32Array(B!) };
    const params = { labelSmoothing: 0.1, centerCoef: 0.01 };
    return {
      bytes: 5 * B! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(pairwise({ ...params, backend: k }, out)(inputs))),
    };
  },
};
