import { call, F32, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench } from './types.js';

/** The full log-softmax: reads the logits, writes [N, V]. */
export const logsoftmaxBench: Bench = {
  op: 'logsoftmax',
  bytesCounted: 'N·V·4 read + N·V·4 written',
  shapes: (quick) => rowShapes(quick).slice(0, 1),
  setup: ([N, V], env) => {
    const inputs = { logits: shaped(uniform(N! * V!, -8, 8, 7), [N!, V!]) };
    const out = { logsoftmax: new Float32Array(N! * V!) };
    return {
      bytes: 2 * N! * V! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => () => call(k.logsoftmax({}, out)(inputs))),
    };
  },
};
