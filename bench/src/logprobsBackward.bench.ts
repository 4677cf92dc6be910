import { call, F32, integers, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench } from './types.js';

/** The backward of logprobs + entropy (both incoming gradients): reads the logits, writes [N, V]. */
export const logprobsBackwardBench: Bench = {
  op: 'logprobsBackward',
  bytesCounted: 'N·V·4 read (logits) + N·V·4 written (gradLogits) + 3·N·4 read (labels, two gradients)',
  shapes: rowShapes,
  setup: ([N, V], env) => {
    const inputs = {
      logits: shaped(uniform(N! * V!, -8, 8, 3), [N!, V!]),
      labels: shaped(integers(N!, V!, 4), [N!]),
      gradLogprobs: shaped(uniform(N!, -1, 1, 5), [N!]),
      gradEntropy: shaped(uniform(N!, -0.1, 0.1, 6), [N!]),
    };
    const out = { gradLogits: new Float32Array(N! * V!) };
    return {
      bytes: 2 * N! * V! * F32 + 3 * N! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(k.logprobsBackward({}, out)(inputs))),
    };
  },
};
