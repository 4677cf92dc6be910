import type { Kernels } from '@rlhf/kernels';
import { call, F32, integers, must, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench } from './types.js';

/**
 * The backward of logprobs + entropy (both incoming gradients): reads the logits, writes [N, V].
 * `fromRowStats`: from the forward's saved row statistics (computed once per backend in setup,
 * outside the timing), so that the backward has no statistics pass and reads each row once.
 */
const backwardBench = (fromRowStats: boolean): Bench => ({
  op: fromRowStats ? 'logprobsBackward.rowStats' : 'logprobsBackward',
  bytesCounted: `N·V·4 read (logits) + N·V·4 written (gradLogits) + ${fromRowStats ? '6·N·4 read (labels, two gradients, rowStats)' : '3·N·4 read (labels, two gradients)'}`,
  shapes: rowShapes,
  setup: ([N, V], env) => {
    const inputs = {
      logits: shaped(uniform(N! * V!, -8, 8, 3), [N!, V!]),
      labels: shaped(integers(N!, V!, 4), [N!]),
      gradLogprobs: shaped(uniform(N!, -1, 1, 5), [N!]),
      gradEntropy: shaped(uniform(N!, -0.1, 0.1, 6), [N!]),
    };
    const out = { gradLogits: new Float32Array(N! * V!) };
    const withStats = (k: Kernels) => (fromRowStats ? { ...inputs, rowStats: must(k.logprobs()(inputs)).rowStats } : inputs);
    return {
      bytes: 2 * N! * V! * F32 + (fromRowStats ? 6 : 3) * N! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => {
        const given = withStats(k);
        return () => call(k.logprobsBackward({}, out)(given));
      }),
    };
  },
});

export const logprobsBackwardBench = backwardBench(false);
export const logprobsBackwardSavedBench = backwardBench(true);
