import {
  jsRaw,
  type AsyncRawKernels,
  type RawKernels,
  type RawKlFull,
  type RawLogprobs,
  type RawLogprobsBackward,
  type RawLogsoftmax,
  type RawLogsoftmaxBackward,
} from '@rlhf/kernels';
import type { FloatArray } from '@rlhf/tensor';
import { DPO_LOSS_CODE, type NativeAddon } from './addon.js';

// The native kernels are float32; a float64 call (all float arrays of a call share one dtype, the facade
// checks it) runs the js kernels. Arrays are passed as they are: zero-copy, outputs written in place.
const isF32 = (a: FloatArray): a is Float32Array => a instanceof Float32Array;
const f32 = (a: FloatArray): Float32Array => a as Float32Array;
const optF32 = (a: FloatArray | null): Float32Array | null => a as Float32Array | null;

/**
 * Below this many elements an async call runs on the calling thread (inside the Promise): handing
 * work to the thread pool costs more than the work.
 */
export const ASYNC_MIN_ELEMENTS = 1 << 15;

/** The `cpu` backend's raw kernels over the addon. */
export const makeCpuRaw = (addon: NativeAddon): RawKernels => {
  const logprobsArgs = (a: RawLogprobs) =>
    [f32(a.logits), a.labels, a.N, a.V, a.temperature, a.ignoreIndex, f32(a.logprobs), f32(a.entropy), optF32(a.rowStats)] as const;
  const logprobsBackwardArgs = (a: RawLogprobsBackward) =>
    [
      f32(a.logits), a.labels, f32(a.gradLogprobs), optF32(a.gradEntropy), optF32(a.rowStats), a.N, a.V, a.temperature,
      a.ignoreIndex, f32(a.gradLogits),
    ] as const;
  const logsoftmaxArgs = (a: RawLogsoftmax) => [f32(a.logits), a.N, a.V, a.temperature, f32(a.logsoftmax)] as const;
  const logsoftmaxBackwardArgs = (a: RawLogsoftmaxBackward) =>
    [f32(a.logits), f32(a.gradOutput), a.N, a.V, a.temperature, f32(a.gradLogits)] as const;
  const klFullArgs = (a: RawKlFull) =>
    [
      f32(a.logitsP), f32(a.logitsQ), optF32(a.gradKl), optF32(a.savedStats), a.N, a.V, a.temperature, f32(a.kl),
      optF32(a.gradLogitsP), optF32(a.rowStats),
    ] as const;

  const raw: Omit<RawKernels, 'async'> = {
    logprobs: (a) => (isF32(a.logits) ? addon.logprobs(...logprobsArgs(a)) : jsRaw.logprobs(a)),
    logprobsBackward: (a) =>
      isF32(a.logits) ? addon.logprobsBackward(...logprobsBackwardArgs(a)) : jsRaw.logprobsBackward(a),
    logsoftmax: (a) => (isF32(a.logits) ? addon.logsoftmax(...logsoftmaxArgs(a)) : jsRaw.logsoftmax(a)),
    logsoftmaxBackward: (a) =>
      isF32(a.logits) ? addon.logsoftmaxBackward(...logsoftmaxBackwardArgs(a)) : jsRaw.logsoftmaxBackward(a),
    klFull: (a) => (isF32(a.logitsP) ? addon.klFull(...klFullArgs(a)) : jsRaw.klFull(a)),
    pairwise: (a) =>
      isF32(a.chosen)
        ? addon.pairwise(f32(a.chosen), f32(a.rejected), optF32(a.margin), a.B, a.labelSmoothing, a.centerCoef,
            f32(a.gradChosen), f32(a.gradRejected))
        : jsRaw.pairwise(a),
    ranking: (a) => (isF32(a.rewards) ? addon.ranking(f32(a.rewards), a.ranks, a.B, a.K, f32(a.grad)) : jsRaw.ranking(a)),
    dpo: (a) =>
      isF32(a.policyChosen)
        ? addon.dpo(f32(a.policyChosen), f32(a.policyRejected), f32(a.refChosen), f32(a.refRejected), a.B, a.beta,
            DPO_LOSS_CODE[a.lossType], a.labelSmoothing, f32(a.gradPolicyChosen), f32(a.gradPolicyRejected),
            f32(a.rewardsChosen), f32(a.rewardsRejected))
        : jsRaw.dpo(a),
  };

  // Large float32 calls go to the addon's worker (off the event loop); the rest run here, in the Promise.
  const offload =
    <A extends { readonly N: number; readonly V: number }>(
      isNative: (a: A) => boolean,
      worker: (a: A) => Promise<void>,
      sync: (a: A) => void,
    ) =>
    async (a: A): Promise<void> =>
      isNative(a) && a.N * a.V >= ASYNC_MIN_ELEMENTS ? worker(a) : sync(a);

  const async: AsyncRawKernels = {
    logprobs: offload((a) => isF32(a.logits), (a) => addon.logprobsAsync(...logprobsArgs(a)), raw.logprobs),
    logprobsBackward: offload(
      (a) => isF32(a.logits),
      (a) => addon.logprobsBackwardAsync(...logprobsBackwardArgs(a)),
      raw.logprobsBackward,
    ),
    logsoftmax: offload((a) => isF32(a.logits), (a) => addon.logsoftmaxAsync(...logsoftmaxArgs(a)), raw.logsoftmax),
    logsoftmaxBackward: offload(
      (a) => isF32(a.logits),
      (a) => addon.logsoftmaxBackwardAsync(...logsoftmaxBackwardArgs(a)),
      raw.logsoftmaxBackward,
    ),
    klFull: offload((a) => isF32(a.logitsP), (a) => addon.klFullAsync(...klFullArgs(a)), raw.klFull),
  };
  // The C kernels re-check every label and rank (float32); float64 calls run js, which trusts the facade's check.
  return { ...raw, async, checksIndices: (dtype) => dtype === 'float32' };
};
