/**
 * The `cuda` backend: the `Kernels` interface on host arrays (so the conformance runner and the
 * trainers use it unchanged), over the CUDA kernels of the addon. Each call uploads its inputs into
 * reusable device scratch buffers, runs the kernel, downloads the outputs and waits; a bad label or
 * rank found on the device comes back as an `index` error. Two PCIe copies per call make this slower
 * than `cpu` for small work: a pipeline that keeps data on the GPU uses the device-buffer API
 * (`cudaDevice()`, ./device.ts) instead.
 *
 * float64 calls run the js kernels (as the `cpu` backend does): the device kernels are float32.
 */
import {
  jsRaw,
  makeKernels,
  registerBackend,
  registerUnavailable,
  type RawKernels,
} from '@rlhf/kernels';
import type { FloatArray } from '@rlhf/tensor';
import { DPO_LOSS_CODE } from './addon.js';
import { CudaStream, DeviceBuffer, labelRangeIgnoreIndex, makeCudaDevice, type CudaBinding, type CudaDevice } from './device.js';

const isF32 = (a: FloatArray): a is Float32Array => a instanceof Float32Array;

/**
 * Device buffers reused across calls, one per argument slot, grown when a call needs more, and the
 * backend's own stream: a stream's error flag reports a bad label to whoever synchronises it next, so
 * the host calls must not share one with device-API work on the default stream.
 */
class Scratch {
  readonly #slots: (DeviceBuffer | undefined)[] = [];
  readonly #stream: CudaStream;
  constructor(private readonly cuda: CudaBinding) {
    this.#stream = new CudaStream(cuda);
  }

  get stream(): bigint {
    return this.#stream.address;
  }

  /** A device address with room for `bytes` in slot `i`. */
  take(i: number, bytes: number): bigint {
    const have = this.#slots[i];
    if (have && have.bytes >= bytes) return have.address;
    this.#slots[i] = undefined; // if the allocation below fails, the slot is empty, not a freed buffer
    have?.free();
    const buffer = new DeviceBuffer(this.cuda, Math.max(bytes, 256));
    this.#slots[i] = buffer;
    return buffer.address;
  }

  /** Slot `i` holding a copy of `host`. */
  put(i: number, host: ArrayBufferView): bigint {
    const at = this.take(i, host.byteLength);
    if (host.byteLength > 0) this.cuda.upload(at, 0, host, this.stream);
    return at;
  }

  putOptional(i: number, host: ArrayBufferView | null): bigint | null {
    return host ? this.put(i, host) : null;
  }

  /** Copies slot `i` back into `host` (waiting for the work before it; throws its index error). */
  get(host: ArrayBufferView, i: number): void {
    this.cuda.download(host, this.#slots[i]!.address, 0, this.stream);
  }
}

/** The `cuda` backend's raw kernels: host arrays in and out. */
export const makeCudaRaw = (cuda: CudaBinding): RawKernels => {
  const sc = new Scratch(cuda);
  const scalars = new Float64Array(3);
  const pairsView = new BigInt64Array(scalars.buffer);
  const scalarSlot = (i: number) => sc.take(i, 24);
  return {
    logprobs: (a) => {
      if (!isF32(a.logits)) return jsRaw.logprobs(a);
      cuda.logprobs(sc.put(0, a.logits), sc.put(1, a.labels), a.N, a.V, a.temperature, labelRangeIgnoreIndex(a.ignoreIndex),
        sc.take(2, 4 * a.N), sc.take(3, 4 * a.N), a.rowStats ? sc.take(4, 12 * a.N) : null, sc.stream);
      sc.get(a.logprobs, 2);
      sc.get(a.entropy, 3);
      if (a.rowStats) sc.get(a.rowStats, 4);
    },
    logprobsBackward: (a) => {
      if (!isF32(a.logits)) return jsRaw.logprobsBackward(a);
      const logits = sc.put(0, a.logits);
      // In place on the host means in place on the device too (the kernel supports it).
      const grad = a.gradLogits === a.logits ? logits : sc.take(4, 4 * a.N * a.V);
      cuda.logprobsBackward(logits, sc.put(1, a.labels), sc.put(2, a.gradLogprobs), sc.putOptional(3, a.gradEntropy),
        sc.putOptional(5, a.rowStats), a.N, a.V, a.temperature, labelRangeIgnoreIndex(a.ignoreIndex), grad, sc.stream);
      sc.get(a.gradLogits, a.gradLogits === a.logits ? 0 : 4);
    },
    logsoftmax: (a) => {
      if (!isF32(a.logits)) return jsRaw.logsoftmax(a);
      cuda.logsoftmax(sc.put(0, a.logits), a.N, a.V, a.temperature, sc.take(1, 4 * a.N * a.V), sc.stream);
      sc.get(a.logsoftmax, 1);
    },
    logsoftmaxBackward: (a) => {
      if (!isF32(a.logits)) return jsRaw.logsoftmaxBackward(a);
      cuda.logsoftmaxBackward(sc.put(0, a.logits), sc.put(1, a.gradOutput), a.N, a.V, a.temperature,
        sc.take(2, 4 * a.N * a.V), sc.stream);
      sc.get(a.gradLogits, 2);
    },
    klFull: (a) => {
      if (!isF32(a.logitsP)) return jsRaw.klFull(a);
      cuda.klFull(sc.put(0, a.logitsP), sc.put(1, a.logitsQ), sc.putOptional(2, a.gradKl), sc.putOptional(5, a.savedStats),
        a.N, a.V, a.temperature, sc.take(3, 4 * a.N), a.gradLogitsP ? sc.take(4, 4 * a.N * a.V) : null,
        a.rowStats ? sc.take(6, 20 * a.N) : null, sc.stream);
      sc.get(a.kl, 3);
      if (a.gradLogitsP) sc.get(a.gradLogitsP, 4);
      if (a.rowStats) sc.get(a.rowStats, 6);
    },
    pairwise: (a) => {
      if (!isF32(a.chosen)) return jsRaw.pairwise(a);
      const s = scalarSlot(5);
      cuda.pairwise(sc.put(0, a.chosen), sc.put(1, a.rejected), sc.putOptional(2, a.margin), a.B, a.labelSmoothing,
        a.centerCoef, sc.take(3, 4 * a.B), sc.take(4, 4 * a.B), s, s + 8n, sc.stream);
      sc.get(a.gradChosen, 3);
      sc.get(a.gradRejected, 4);
      sc.get(scalars, 5);
      return { loss: scalars[0]!, accuracy: scalars[1]! };
    },
    ranking: (a) => {
      if (!isF32(a.rewards)) return jsRaw.ranking(a);
      const s = scalarSlot(3);
      cuda.ranking(sc.put(0, a.rewards), sc.put(1, a.ranks), a.B, a.K, sc.take(2, 4 * a.B * a.K), s, s + 8n, s + 16n, sc.stream);
      sc.get(a.grad, 2);
      sc.get(scalars, 3);
      return { loss: scalars[0]!, accuracy: scalars[1]!, pairs: Number(pairsView[2]) };
    },
    dpo: (a) => {
      if (!isF32(a.policyChosen)) return jsRaw.dpo(a);
      const s = scalarSlot(8);
      cuda.dpo(sc.put(0, a.policyChosen), sc.put(1, a.policyRejected), sc.put(2, a.refChosen), sc.put(3, a.refRejected),
        a.B, a.beta, DPO_LOSS_CODE[a.lossType], a.labelSmoothing, sc.take(4, 4 * a.B), sc.take(5, 4 * a.B),
        sc.take(6, 4 * a.B), sc.take(7, 4 * a.B), s, s + 8n, sc.stream);
      sc.get(a.gradPolicyChosen, 4);
      sc.get(a.gradPolicyRejected, 5);
      sc.get(a.rewardsChosen, 6);
      sc.get(a.rewardsRejected, 7);
      sc.get(scalars, 8);
      return { loss: scalars[0]!, accuracy: scalars[1]! };
    },
  };
};

let device: CudaDevice | undefined;
let unavailable = 'not registered: import "@rlhf/native" to load the native kernels';

/**
 * Registers the `cuda` backend from the addon's `cuda` object, or records why it is unavailable
 * (no addon, built without CUDA, no driver or device).
 */
export const registerCuda = (
  addon: { readonly cuda?: unknown; readonly cudaUnavailable?: string } | undefined,
  loadError?: string,
): void => {
  const binding = addon?.cuda as CudaBinding | undefined;
  if (!binding) {
    unavailable = loadError ?? addon?.cudaUnavailable ?? 'the CUDA kernels are not built into this addon';
    registerUnavailable('cuda', unavailable);
    return;
  }
  try {
    device = makeCudaDevice(binding);
    registerBackend(makeKernels('cuda', makeCudaRaw(binding)));
  } catch (e) {
    device = undefined;
    unavailable = `the CUDA device could not be opened: ${e instanceof Error ? e.message : String(e)}`;
    registerUnavailable('cuda', unavailable);
  }
};

/** The device-buffer API, when the cuda backend is available. */
export const cudaDevice = (): CudaDevice | undefined => device;

/** Why the cuda backend is unavailable ('' when it is available). */
export const cudaUnavailableReason = (): string => (device ? '' : unavailable);
