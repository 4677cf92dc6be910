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

/** Its arguments as a (mutable) tuple: the addon's functions take them spread. */
const tuple = <T extends unknown[]>(...xs: T): T => xs;

/** Not a view, or a view on memory that cannot shrink while a worker uses it. */
const onFixedLengthBuffer = (x: unknown): boolean =>
  !ArrayBuffer.isView(x) || !(x.buffer as ArrayBufferLike & { readonly resizable?: boolean }).resizable;

/** The `cpu` backend's raw kernels over the addon. */
export const makeCpuRaw = (addon: NativeAddon): RawKernels => {
  const logprobsArgs = (a: RawLogprobs) =>
    tuple(f32(a.logits), a.labels, a.N, a.V, a.temperature, a.ignoreIndex, f32(a.logprobs), f32(a.entropy), optF32(a.rowStats));
  const logprobsBackwardArgs = (a: RawLogprobsBackward) =>
    tuple(f32(a.logits), a.labels, f32(a.gradLogprobs), optF32(a.gradEntropy), optF32(a.rowStats), a.N, a.V, a.temperature,
      a.ignoreIndex, f32(a.gradLogits));
  const logsoftmaxArgs = (a: RawLogsoftmax) =>
    tuple(f32(a.logits), a.N, a.V, a.temperature, f32(a.logsoftmax));
  const logsoftmaxBackwardArgs = (a: RawLogsoftmaxBackward) =>
    tuple(f32(a.logits), f32(a.gradOutput), a.N, a.V, a.temperature, f32(a.gradLogits));
  const klFullArgs = (a: RawKlFull) =>
    tuple(f32(a.logitsP), f32(a.logitsQ), optF32(a.gradKl), optF32(a.savedStats), a.N, a.V, a.temperature, f32(a.kl),
      optF32(a.gradLogitsP), optF32(a.rowStats));

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
  // So do calls on a resizable ArrayBuffer: JS code could shrink it under the worker while the Promise is
  // pending (a transferred buffer cannot be detected in advance: the README says not to transfer one).
  const offload =
    <A extends { readonly N: number; readonly V: number }, Args extends unknown[]>(
      isNative: (a: A) => boolean,
      argsOf: (a: A) => Args,
      worker: (...args: Args) => Promise<void>,
      sync: (a: A) => void,
    ) =>
    async (a: A): Promise<void> => {
      if (!isNative(a) || a.N * a.V < ASYNC_MIN_ELEMENTS) return sync(a);
      const args = argsOf(a);
      return args.every(onFixedLengthBuffer) ? worker(...args) : sync(a);
    };

  const async: AsyncRawKernels = {
    logprobs: offload((a) => isF32(a.logits), logprobsArgs, addon.logprobsAsync, raw.logprobs),
    logprobsBackward: offload(
      (a) => isF32(a.logits),
      logprobsBackwardArgs,
      addon.logprobsBackwardAsync,
      raw.logprobsBackward,
    ),
    logsoftmax: offload((a) => isF32(a.logits), logsoftmaxArgs, addon.logsoftmaxAsync, raw.logsoftmax),
    logsoftmaxBackward: offload(
      (a) => isF32(a.logits),
      logsoftmaxBackwardArgs,
      addon.logsoftmaxBackwardAsync,
      raw.logsoftmaxBackward,
    ),
    klFull: offload((a) => isF32(a.logitsP), klFullArgs, addon.klFullAsync, raw.klFull),
  };
  // The C kernels re-check every label and rank (float32); float64 calls run js, which trusts the facade's check.
  return { ...raw, async, checksIndices: (dtype) => dtype === 'float32' };
};
