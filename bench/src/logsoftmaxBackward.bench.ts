import { call, F32, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench } from './types.js';

/** The backward of log-softmax: reads the logits and the incoming gradient, writes [N, V]. */
export const logsoftmaxBackwardBench: Bench = {
  op: 'logsoftmaxBackward',
  bytesCounted: '2·N·V·4 read (logits, gradOutput) + N·V·4 written',
  shapes: (quick) => rowShapes(quick).slice(0, 1),
  setup: ([N, V], env) => {
    const inputs = {
      logits: shaped(uniform(N! * V!, -8, 8, 8), [N!, V!]),
      gradOutput: shaped(uniform(N! * V!, -1e-3, 1e-3, 9), [N!, V!]),
    };
    const out = { gradLogits: new Float32Array(N! * V!) };
    return {
      bytes: 3 * N! * V! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(k.logsoftmaxBackward({}, out)(inputs))),
    };
  },
};
