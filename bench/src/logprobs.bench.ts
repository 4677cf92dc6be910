import type { Kernels, LogprobsInputs, LogprobsOut } from '@rlhf/kernels';
import { call, F32, integers, shaped, uniform } from './data.js';
import { rowShapes } from './runners.js';
import type { Bench, BenchEnv, Shape, Workload } from './types.js';

const BYTES_COUNTED = 'N·V·4 read (logits) + N·4 read (labels) + 5·N·4 written (logprobs, entropy, rowStats)';

/** The forward's buffers, and one runner per backend built by `invoke` over them. */
const forwardWorkload = (
  [N, V]: Shape,
  env: BenchEnv,
  invoke: (k: Kernels, inputs: LogprobsInputs, out: LogprobsOut) => () => void | Promise<void>,
): Workload => {
  const inputs = { logits: shaped(uniform(N! * V!, -8, 8, 1), [N!, V!]), labels: shaped(integers(N!, V!, 2), [N!]) };
  const out = { logprobs: new Float32Array(N!), entropy: new Float32Array(N!), rowStats: new Float32Array(3 * N!) };
  return {
    bytes: N! * V! * F32 + 6 * N! * F32,
    reference: 'read',
    runners: env.kernels.map((k) => ({ backend: k.name, run: invoke(k, inputs, out) })),
  };
};

/** logprobs + entropy forward: reads the logits once, writes two numbers per row. */
export const logprobsBench: Bench = {
  op: 'logprobs',
  bytesCounted: BYTES_COUNTED,
  shapes: rowShapes,
  setup: (shape, env) => forwardWorkload(shape, env, (k, inputs, out) => () => call(k.logprobs({}, out)(inputs))),
};

/**
 * The same forward through `async.logprobs` (a worker thread on native backends): what it costs to
 * keep the event loop free while the kernel runs. One shape: the target's.
 */
export const logprobsAsyncBench: Bench = {
  op: 'logprobs.async',
  bytesCounted: BYTES_COUNTED,
  shapes: (quick) => (quick ? rowShapes(true).slice(0, 1) : [[4096, 32000]]),
  setup: (shape, env) =>
    forwardWorkload(shape, env, (k, inputs, out) => async () => call(await k.async.logprobs({}, out)(inputs)())),
};
