import type { Kernels } from '@rlhf/kernels';
import { call, F32, integers, must, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench, Shape } from './types.js';

const backwardInputs = ([N, V]: Shape) => ({
  logits: shaped(uniform(N! * V!, -8, 8, 3), [N!, V!]),
  labels: shaped(integers(N!, V!, 4), [N!]),
  gradLogprobs: shaped(uniform(N!, -1, 1, 5), [N!]),
  gradEntropy: shaped(uniform(N!, -0.1, 0.1, 6), [N!]),
});

/** The backward of logprobs + entropy (both incoming gradients): reads the logits, writes [N, V]. */
export const logprobsBackwardBench: Bench = {
  op: 'logprobsBackward',
  bytesCounted: 'N·V·4 read (logits) + N·V·4 written (gradLogits) + 3·N·4 read (labels, two gradients)',
  shapes: rowShapes,
  setup: (shape, env) => {
    const [N, V] = shape;
    const inputs = backwardInputs(shape);
    const out = { gradLogits: new Float32Array(N! * V!) };
    return {
      bytes: 2 * N! * V! * F32 + 3 * N! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(k.logprobsBackward({}, out)(inputs))),
    };
  },
};

/**
 * The same backward from the forward's saved row statistics (computed once per backend in setup,
 * outside the timing): no statistics pass, the row is read once.
 */
export const logprobsBackwardSavedBench: Bench = {
  op: 'logprobsBackward.rowStats',
  bytesCounted: 'N·V·4 read (logits) + N·V·4 written (gradLogits) + 6·N·4 read (labels, two gradients, rowStats)',
  shapes: rowShapes,
  setup: (shape, env) => {
    const [N, V] = shape;
    const inputs = backwardInputs(shape);
    const out = { gradLogits: new Float32Array(N! * V!) };
    const withStats = (k: Kernels) => ({ ...inputs, rowStats: must(k.logprobs()(inputs)).rowStats });
    return {
      bytes: 2 * N! * V! * F32 + 6 * N! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => {
        const saved = withStats(k);
        return () => call(k.logprobsBackward({}, out)(saved));
      }),
    };
  },
};
