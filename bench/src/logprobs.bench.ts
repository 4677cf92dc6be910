import { call, F32, integers, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench } from './types.js';

/** logprobs + entropy forward: reads the logits once, writes two numbers per row. */
export const logprobsBench: Bench = {
  op: 'logprobs',
  bytesCounted: 'N·V·4 read (logits) + N·4 read (labels) + 2·N·4 written',
  shapes: rowShapes,
  setup: ([N, V], env) => {
    const inputs = { logits: shaped(uniform(N! * V!, -8, 8, 1), [N!, V!]), labels: shaped(integers(N!, V!, 2), [N!]) };
    const out = { logprobs: new Float32Array(N!), entropy: new Float32Array(N!) };
    return {
      bytes: N! * V! * F32 + 3 * N! * F32,
      reference: 'read',
      runners: kernelRunners(env, (k) => () => call(k.logprobs({}, out)(inputs))),
    };
  },
};
