/**
 * Device buffers: GPU memory held from TypeScript, so that a pipeline can keep logits on the GPU
 * between steps and pay PCIe only for what it reads back.
 *
 * - `DeviceBuffer`: allocate, upload, download, free — and freed when garbage-collected (a
 *   FinalizationRegistry), so a forgotten buffer is not a leak, only a late free.
 * - `DeviceTensor`: a buffer with a dtype ('float32' | 'int32') and a shape.
 * - `CudaStream`: work on one stream runs in order; kernels return as soon as they are queued.
 * - `CudaDevice.kernels`: the row kernels and preference losses on device tensors, in the library's
 *   curried form `op(params?, out?)(inputs)`. Labels and ranks are checked on the device: a bad one
 *   makes the next `download`/`synchronize` on that stream fail with an `index` error (its row's
 *   outputs are NaN). Scalars (loss, accuracy) are read back, so the preference losses wait.
 */
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  booleanParam,
  dtypeOf,
  emptyError,
  expectTensor,
  formatShape,
  guarded,
  integerParam,
  nonNegative,
  numel,
  oneOf,
  paramError,
  positive,
  shapeError,
  toRlhfError,
  show,
  unsafeTensor,
  validShape,
  type ArrayOf,
  type Result,
  type Tensor,
} from '@rlhf/tensor';
import { DPO_LOSS_TYPES, labelSmoothingParam, temperatureParam, type DpoLossType } from '@rlhf/kernels';
import { DPO_LOSS_CODE } from './addon.js';

type Address = bigint;
type MaybeAddress = bigint | null;

/** The object the addon exports as `cuda` (native/binding/cuda_binding.cc). Addresses are bigint, 0n = NULL. */
export interface CudaBinding {
  deviceName(): string;
  deviceCount(): number;
  setDevice(device: number): void;
  malloc(bytes: number): Address;
  free(address: Address): void;
  upload(dst: Address, byteOffset: number, src: ArrayBufferView, stream: Address): void;
  /** Waits for the stream afterwards: an `index` error found by an earlier kernel throws here. */
  download(dst: ArrayBufferView, src: Address, byteOffset: number, stream: Address): void;
  copy(dst: Address, src: Address, bytes: number, stream: Address): void;
  streamCreate(): Address;
  streamDestroy(stream: Address): void;
  synchronize(stream: Address): void;
  setRowTuning(maxCluster: number, cacheRows: boolean): void;
  lastLaunch(): string;
  logprobs(logits: Address, labels: Address, N: number, V: number, T: number, ignoreIndex: number, logprobs: Address,
    entropy: Address, rowStats: MaybeAddress, stream: Address): void;
  logprobsBackward(logits: Address, labels: Address, gradLogprobs: Address, gradEntropy: MaybeAddress, rowStats: MaybeAddress, N: number,
    V: number, T: number, ignoreIndex: number, gradLogits: Address, stream: Address): void;
  logsoftmax(logits: Address, N: number, V: number, T: number, out: Address, stream: Address): void;
  logsoftmaxBackward(logits: Address, gradOutput: Address, N: number, V: number, T: number, gradLogits: Address,
    stream: Address): void;
  klFull(logitsP: Address, logitsQ: Address, gradKl: MaybeAddress, savedStats: MaybeAddress, N: number, V: number, T: number,
    kl: Address, gradLogitsP: MaybeAddress, rowStats: MaybeAddress, stream: Address): void;
  pairwise(chosen: Address, rejected: Address, margin: MaybeAddress, B: number, labelSmoothing: number,
    centerCoef: number, gradChosen: Address, gradRejected: Address, loss: Address, accuracy: Address,
    stream: Address): void;
  ranking(rewards: Address, ranks: Address, B: number, K: number, grad: Address, loss: Address, accuracy: Address,
    pairs: Address, stream: Address): void;
  dpo(policyChosen: Address, policyRejected: Address, refChosen: Address, refRejected: Address, B: number,
    beta: number, lossType: number, labelSmoothing: number, gradPolicyChosen: Address, gradPolicyRejected: Address,
    rewardsChosen: Address, rewardsRejected: Address, loss: Address, accuracy: Address, stream: Address): void;
}

// ---- buffers and streams ------------------------------------------------------------------------------

// Releases run when the owner is collected; at exit the CUDA context may already be gone, and then
// there is nothing left to release.
const releases = new FinalizationRegistry<() => void>((release) => {
  try {
    release();
  } catch {
    /* the context is gone: nothing to release */
  }
});

/** A device allocation owned by JavaScript: `free()` releases it now, garbage collection later. */
export class DeviceBuffer {
  #address: Address | null;
  readonly #cuda: CudaBinding;
  readonly #bytes: number;

  constructor(cuda: CudaBinding, bytes: number) {
    this.#cuda = cuda;
    const address = cuda.malloc(bytes);
    this.#address = address;
    this.#bytes = bytes;
    // The release closure must not capture `this`, or the buffer would never be collected.
    releases.register(this, () => cuda.free(address), this);
    // Frozen: no own property can shadow `address` or `bytes`, which every bound check reads.
    Object.freeze(this);
  }

  /** The allocation's size (a private field: a kernel's bounds are checked against what was allocated). */
  get bytes(): number {
    return this.#bytes;
  }

  get freed(): boolean {
    return this.#address === null;
  }

  /** The device address; throws a `shape` error once freed. */
  get address(): Address {
    if (this.#address === null) throw shapeError('this device buffer was freed');
    return this.#address;
  }

  free(): void {
    if (this.#address === null) return;
    releases.unregister(this);
    const address = this.#address;
    this.#address = null;
    this.#cuda.free(address);
  }
}

/**
 * A stream of the device: kernels queued on it run in order. Destroyed by `destroy()` or when collected.
 * A bad label or rank a kernel met on it is reported by the next download or `synchronize` on it:
 * synchronize before destroying (or dropping) a stream whose outcome matters, or that report is lost.
 */
export class CudaStream {
  #address: Address | null;
  readonly #cuda: CudaBinding;

  constructor(cuda: CudaBinding, address?: Address) {
    this.#cuda = cuda;
    const owned = address === undefined;
    const a = address ?? cuda.streamCreate();
    this.#address = a;
    if (owned) releases.register(this, () => cuda.streamDestroy(a), this);
    Object.freeze(this);
  }

  get address(): Address {
    if (this.#address === null) throw shapeError('this stream was destroyed');
    return this.#address;
  }

  destroy(): void {
    if (this.#address === null || this.#address === 0n) return;
    releases.unregister(this);
    const a = this.#address;
    this.#address = null;
    this.#cuda.streamDestroy(a);
  }
}

export type DeviceDType = 'float32' | 'int32';

/** A device buffer with a dtype and a shape (row-major). */
export interface DeviceTensor<D extends DeviceDType = DeviceDType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly buffer: DeviceBuffer;
}

const BYTES: Record<DeviceDType, number> = { float32: 4, int32: 4 };

// The caller's tensor behind a checked snapshot: results give back the caller's own objects (an output
// given in `out`, the logits written in place), while the kernels use the snapshot's fields.
const THEIRS = Symbol('the caller’s tensor');
const theirs = <T>(t: T): T => ((t as { [THEIRS]?: T })[THEIRS] ?? t);

/**
 * `u` as a device tensor of `dtype` (and `shape` or `rank` when given), checked on a snapshot: each
 * field is read once and the kernels use the snapshot, so a getter cannot show the check one buffer
 * or shape and the kernel another.
 */
const expectDevice =
  <D extends DeviceDType>(dtype: D, shape?: readonly number[], rank?: number) =>
  (name: string, u: unknown): Result<DeviceTensor<D>> => {
    if (typeof u !== 'object' || u === null) return E.left(shapeError(`${name}: expected a DeviceTensor`));
    const { dtype: got, shape: dims, buffer } = u as DeviceTensor;
    if (!(buffer instanceof DeviceBuffer) || !Array.isArray(dims) || (got !== 'float32' && got !== 'int32'))
      return E.left(shapeError(`${name}: expected a DeviceTensor`));
    const t: DeviceTensor<D> = Object.defineProperty({ dtype: got as D, shape: [...dims], buffer }, THEIRS, { value: u });
    if (t.dtype !== dtype) return E.left(shapeError(`${name}: expected a ${dtype} DeviceTensor, got ${t.dtype}`));
    if (!validShape(t.shape)) return E.left(shapeError(`${name}: invalid shape ${show(t.shape)}`));
    if (buffer.freed) return E.left(shapeError(`${name}: its device buffer was freed`));
    if (rank !== undefined && t.shape.length !== rank)
      return E.left(shapeError(`${name}: expected rank ${rank}, got shape ${formatShape(t.shape)}`));
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])))
      return E.left(shapeError(`${name}: expected shape ${formatShape(shape)}, got ${formatShape(t.shape)}`));
    if (buffer.bytes < numel(t.shape) * BYTES[dtype]) return E.left(shapeError(`${name}: its buffer is smaller than its shape`));
    return E.right(t);
  };

const optionalDevice =
  <D extends DeviceDType>(dtype: D, shape: readonly number[]) =>
  (name: string, u: unknown): Result<DeviceTensor<D> | null> =>
    u === undefined || u === null ? E.right(null) : expectDevice(dtype, shape)(name, u);

// ---- the kernels on device tensors -----------------------------------------------------------------------

/** Every device op takes an optional stream (default: the device's default stream). */
export interface StreamParam {
  readonly stream?: CudaStream;
}
export interface DeviceRowParams extends StreamParam {
  readonly temperature?: number | null;
}
export interface DeviceLogprobsParams extends DeviceRowParams {
  readonly ignoreIndex?: number | null;
  /** backward only: write the gradient over the logits buffer. */
  readonly inPlace?: boolean;
}
export interface DeviceKlParams extends DeviceRowParams {
  /** Default true. */
  readonly withGrad?: boolean;
}
export interface DevicePairwiseParams extends StreamParam {
  readonly labelSmoothing?: number | null;
  readonly centerCoef?: number | null;
}
export interface DeviceDpoParams extends StreamParam {
  readonly beta?: number | null;
  readonly lossType?: DpoLossType | null;
  readonly labelSmoothing?: number | null;
}

type F32 = DeviceTensor<'float32'>;
type I32 = DeviceTensor<'int32'>;
type Out<K extends string> = Partial<Record<K, F32>>;

export interface DeviceKernels {
  /** `rowStats` [N, 3]: the row statistics `logprobsBackward` can take instead of recomputing them. */
  logprobs: (p?: DeviceLogprobsParams, out?: Out<'logprobs' | 'entropy' | 'rowStats'>) =>
    (i: { logits: F32; labels: I32 }) => Result<{ logprobs: F32; entropy: F32; rowStats: F32 }>;
  logprobsBackward: (p?: DeviceLogprobsParams, out?: Out<'gradLogits'>) =>
    (i: { logits: F32; labels: I32; gradLogprobs: F32; gradEntropy?: F32 | null; rowStats?: F32 | null }) =>
      Result<{ gradLogits: F32 }>;
  logsoftmax: (p?: DeviceRowParams, out?: Out<'logsoftmax'>) => (i: { logits: F32 }) => Result<{ logsoftmax: F32 }>;
  logsoftmaxBackward: (p?: DeviceRowParams, out?: Out<'gradLogits'>) =>
    (i: { logits: F32; gradOutput: F32 }) => Result<{ gradLogits: F32 }>;
  /** `rowStats` [N, 5]: the row statistics a later call can take (input `rowStats`) to skip its statistics pass. */
  klFull: (p?: DeviceKlParams, out?: Out<'kl' | 'gradLogitsP' | 'rowStats'>) =>
    (i: { logitsP: F32; logitsQ: F32; gradKl?: F32 | null; rowStats?: F32 | null }) =>
      Result<{ kl: F32; gradLogitsP?: F32; rowStats: F32 }>;
  pairwise: (p?: DevicePairwiseParams, out?: Out<'gradChosen' | 'gradRejected'>) =>
    (i: { chosen: F32; rejected: F32; margin?: F32 | null }) =>
      Result<{ loss: number; accuracy: number; gradChosen: F32; gradRejected: F32 }>;
  /** A batch without a pair is an `empty` error found on the device, after `out.grad` was written (zeros). */
  ranking: (p?: StreamParam, out?: Out<'grad'>) => (i: { rewards: F32; ranks: I32 }) =>
    Result<{ loss: number; accuracy: number; pairs: number; grad: F32 }>;
  dpo: (p?: DeviceDpoParams, out?: Out<'gradPolicyChosen' | 'gradPolicyRejected' | 'rewardsChosen' | 'rewardsRejected'>) =>
    (i: { policyChosen: F32; policyRejected: F32; refChosen: F32; refRejected: F32 }) => Result<{
      loss: number; accuracy: number; gradPolicyChosen: F32; gradPolicyRejected: F32; rewardsChosen: F32; rewardsRejected: F32;
    }>;
}

export interface CudaDevice {
  /** e.g. "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB". */
  readonly name: string;
  /** The legacy default stream (address 0n). */
  readonly defaultStream: CudaStream;
  createStream(): Result<CudaStream>;
  alloc<D extends DeviceDType>(dtype: D, shape: readonly number[]): Result<DeviceTensor<D>>;
  /** Copies a host tensor (float32 or int32) to a new device tensor, or into `into`. */
  upload<D extends DeviceDType>(t: Tensor<D>, stream?: CudaStream, into?: DeviceTensor<D>): Result<DeviceTensor<D>>;
  /** Copies back (waiting for the stream): fails with `index` when a kernel on it met a bad label or rank. */
  download<D extends DeviceDType>(t: DeviceTensor<D>, stream?: CudaStream, out?: ArrayOf[D]): Result<Tensor<D>>;
  synchronize(stream?: CudaStream): Result<void>;
  readonly kernels: DeviceKernels;
  /** Row-kernel layout knobs (benchmarks, tests): largest cluster (0 auto, 1 never split), shared-memory row cache. */
  setRowTuning(maxCluster: number, cacheRows: boolean): Result<void>;
  /** How the last row kernel was laid out, e.g. "cuda logprobs: block512 cluster1 vec4". */
  lastLaunch(): string;
}

/** ignoreIndex is any integer; labels are int32, so one outside int32 equals no label: it is clamped to just
 *  outside that range, which the C ABI's int64_t holds exactly. */
export const labelRangeIgnoreIndex = (i: number): number => Math.min(Math.max(i, -2147483649), 2147483648);

type AnyOp = (p: unknown, out: unknown) => (i: unknown) => unknown;
/** Device ops take null (or nothing) for params, outputs and inputs, as the host ops do: a missing input is
 *  then a typed error, not a TypeError; and, as the host ops, they never throw (a getter that throws is a Left). */
const lenient = (ops: DeviceKernels): DeviceKernels =>
  Object.fromEntries(
    Object.entries(ops as unknown as Record<string, AnyOp>).map(([name, op]) => [
      name,
      (p?: unknown, out?: unknown) => (i?: unknown) => guarded(() => op(p ?? {}, out ?? {})(i ?? {}) as Result<unknown>),
    ]),
  ) as unknown as DeviceKernels;

export const makeCudaDevice = (cuda: CudaBinding): CudaDevice => {
  const defaultStream = new CudaStream(cuda, 0n);
  // A stream argument is a CudaStream or nothing: anything else would run on the default stream unseen.
  const streamAddress = (stream: unknown): Address => {
    if (stream === undefined || stream === null) return defaultStream.address;
    if (!(stream instanceof CudaStream)) throw paramError(`stream: expected a CudaStream, got ${show(stream)}`);
    return stream.address;
  };
  const s = (p?: StreamParam): Address => streamAddress(p?.stream);
  const attempt = <A>(f: () => A): Result<A> => E.tryCatch(f, toRlhfError);

  const alloc = <D extends DeviceDType>(dtype: D, shape: readonly number[]): Result<DeviceTensor<D>> =>
    dtype !== 'float32' && dtype !== 'int32'
      ? E.left(shapeError(`alloc: ${String(dtype)} is not a device dtype (float32 or int32)`))
      : validShape(shape)
        ? attempt(() => ({ dtype, shape: [...shape], buffer: new DeviceBuffer(cuda, numel(shape) * BYTES[dtype]) }))
        : E.left(shapeError(`alloc: invalid shape ${show(shape)}`));

  const output =
    (shape: readonly number[], given: F32 | undefined) =>
    (name: string): Result<F32> =>
      given === undefined ? alloc('float32', shape) : expectDevice('float32', shape)(name, given);

  const rows = (name: string, u: unknown) =>
    pipe(
      expectDevice('float32', undefined, 2)(name, u),
      E.chain((t) => (t.shape[1]! >= 1 ? E.right({ t, N: t.shape[0]!, V: t.shape[1]! }) : E.left(shapeError(`${name}: V must be >= 1`)))),
    );
  const vector = (name: string, u: unknown) =>
    pipe(
      expectDevice('float32', undefined, 1)(name, u),
      E.chain((t) => (t.shape[0]! >= 1 ? E.right(t) : E.left(emptyError(`${name}: the batch is empty`)))),
    );
  const a = (t: DeviceTensor): Address => t.buffer.address;
  const aOpt = (t: DeviceTensor | null): MaybeAddress => (t ? t.buffer.address : null);

  // Scalars of the preference losses come back through one small device buffer per call.
  // The stream is read once (a getter could send the launch and the read-back to different streams).
  const readScalars = (count: number, stream: Address, launch: (at: (i: number) => Address, stream: Address) => void): Float64Array => {
    const scalars = new DeviceBuffer(cuda, 8 * count);
    try {
      const base = scalars.address;
      launch((i) => base + BigInt(8 * i), stream);
      const host = new Float64Array(count);
      cuda.download(host, base, 0, stream);
      return host;
    } finally {
      scalars.free();
    }
  };

  const download = <D extends DeviceDType>(tensor: DeviceTensor<D>, stream?: CudaStream, out?: ArrayOf[D]): Result<Tensor<D>> =>
    guarded(() => {
      const dtype = (tensor as { dtype?: unknown } | null)?.dtype === 'int32' ? 'int32' : 'float32';
      const checked = expectDevice(dtype, undefined)('download', tensor);
      if (E.isLeft(checked)) return checked;
      const t = checked.right as DeviceTensor<D>;
      const length = numel(t.shape);
      const data = out ?? ((t.dtype === 'float32' ? new Float32Array(length) : new Int32Array(length)) as ArrayOf[D]);
      if (dtypeOf(data) !== t.dtype) return E.left(shapeError(`download: out must be a ${t.dtype} array for a ${t.dtype} tensor`));
      if (data.length !== length) return E.left(shapeError(`download: out has ${data.length} elements, the tensor ${length}`));
      return attempt(() => {
        cuda.download(data, t.buffer.address, 0, streamAddress(stream));
        return unsafeTensor(t.dtype, t.shape, data);
      });
    });

  const kernels: DeviceKernels = lenient({
    logprobs: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rows', () => rows('logits', i?.logits)),
        E.bind('labels', ({ rows }) => expectDevice('int32', [rows.N])('labels', i.labels)),
        E.bind('T', () => temperatureParam(p.temperature)),
        E.bind('ignore', () => integerParam('ignoreIndex', p.ignoreIndex, -100)),
        E.bind('logprobs', ({ rows }) => output([rows.N], out.logprobs)('logprobs')),
        E.bind('entropy', ({ rows }) => output([rows.N], out.entropy)('entropy')),
        E.bind('rowStats', ({ rows }) => output([rows.N, 3], out.rowStats)('rowStats')),
        E.chainFirst(({ rows, labels, T, ignore, logprobs, entropy, rowStats }) =>
          attempt(() =>
            cuda.logprobs(a(rows.t), a(labels), rows.N, rows.V, T, labelRangeIgnoreIndex(ignore), a(logprobs), a(entropy), a(rowStats), s(p)),
          ),
        ),
        E.map(({ logprobs, entropy, rowStats }) => ({ logprobs: theirs(logprobs), entropy: theirs(entropy), rowStats: theirs(rowStats) })),
      ),
    logprobsBackward: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rows', () => rows('logits', i?.logits)),
        E.bind('labels', ({ rows }) => expectDevice('int32', [rows.N])('labels', i.labels)),
        E.bind('gLp', ({ rows }) => expectDevice('float32', [rows.N])('gradLogprobs', i.gradLogprobs)),
        E.bind('gH', ({ rows }) => optionalDevice('float32', [rows.N])('gradEntropy', i.gradEntropy)),
        E.bind('stats', ({ rows }) => optionalDevice('float32', [rows.N, 3])('rowStats', i.rowStats)),
        E.bind('T', () => temperatureParam(p.temperature)),
        E.bind('ignore', () => integerParam('ignoreIndex', p.ignoreIndex, -100)),
        E.bind('inPlace', () => booleanParam('inPlace', p.inPlace, false)),
        E.bind('gradLogits', ({ rows, inPlace }) => (inPlace ? E.right(rows.t) : output([rows.N, rows.V], out.gradLogits)('gradLogits'))),
        E.chainFirst(({ rows, labels, gLp, gH, stats, T, ignore, gradLogits }) =>
          attempt(() =>
            cuda.logprobsBackward(a(rows.t), a(labels), a(gLp), aOpt(gH), aOpt(stats), rows.N, rows.V, T, labelRangeIgnoreIndex(ignore),
              a(gradLogits), s(p)),
          ),
        ),
        E.map(({ gradLogits }) => ({ gradLogits: theirs(gradLogits) })),
      ),
    logsoftmax: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rows', () => rows('logits', i?.logits)),
        E.bind('T', () => temperatureParam(p.temperature)),
        E.bind('logsoftmax', ({ rows }) => output([rows.N, rows.V], out.logsoftmax)('logsoftmax')),
        E.chainFirst(({ rows, T, logsoftmax }) => attempt(() => cuda.logsoftmax(a(rows.t), rows.N, rows.V, T, a(logsoftmax), s(p)))),
        E.map(({ logsoftmax }) => ({ logsoftmax: theirs(logsoftmax) })),
      ),
    logsoftmaxBackward: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rows', () => rows('logits', i?.logits)),
        E.bind('g', ({ rows }) => expectDevice('float32', [rows.N, rows.V])('gradOutput', i.gradOutput)),
        E.bind('T', () => temperatureParam(p.temperature)),
        E.bind('gradLogits', ({ rows }) => output([rows.N, rows.V], out.gradLogits)('gradLogits')),
        E.chainFirst(({ rows, g, T, gradLogits }) =>
          attempt(() => cuda.logsoftmaxBackward(a(rows.t), a(g), rows.N, rows.V, T, a(gradLogits), s(p))),
        ),
        E.map(({ gradLogits }) => ({ gradLogits: theirs(gradLogits) })),
      ),
    klFull: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rows', () => rows('logitsP', i?.logitsP)),
        E.bind('q', ({ rows }) => expectDevice('float32', [rows.N, rows.V])('logitsQ', i.logitsQ)),
        E.bind('gKl', ({ rows }) => optionalDevice('float32', [rows.N])('gradKl', i.gradKl)),
        E.bind('saved', ({ rows }) => optionalDevice('float32', [rows.N, 5])('rowStats', i.rowStats)),
        E.bind('T', () => temperatureParam(p.temperature)),
        E.bind('kl', ({ rows }) => output([rows.N], out.kl)('kl')),
        E.bind('withGrad', () => booleanParam('withGrad', p.withGrad, true)),
        E.bind('grad', ({ rows, withGrad }) => (withGrad ? output([rows.N, rows.V], out.gradLogitsP)('gradLogitsP') : E.right(null))),
        E.bind('rowStats', ({ rows }) => output([rows.N, 5], out.rowStats)('rowStats')),
        E.chainFirst(({ rows, q, gKl, saved, T, kl, grad, rowStats }) =>
          attempt(() =>
            cuda.klFull(a(rows.t), a(q), aOpt(gKl), aOpt(saved), rows.N, rows.V, T, a(kl), aOpt(grad), a(rowStats), s(p)),
          ),
        ),
        E.map(({ kl, grad, rowStats }) => ({ kl: theirs(kl), rowStats: theirs(rowStats), ...(grad && { gradLogitsP: theirs(grad) }) })),
      ),
    pairwise: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('chosen', () => vector('chosen', i?.chosen)),
        E.bind('rejected', ({ chosen }) => expectDevice('float32', chosen.shape)('rejected', i.rejected)),
        E.bind('margin', ({ chosen }) => optionalDevice('float32', chosen.shape)('margin', i.margin)),
        E.bind('eps', () => labelSmoothingParam(p.labelSmoothing)),
        E.bind('c', () => nonNegative('centerCoef', p.centerCoef, 0)),
        E.bind('gradChosen', ({ chosen }) => output(chosen.shape, out.gradChosen)('gradChosen')),
        E.bind('gradRejected', ({ chosen }) => output(chosen.shape, out.gradRejected)('gradRejected')),
        E.bind('scalars', ({ chosen, rejected, margin, eps, c, gradChosen, gradRejected }) =>
          attempt(() =>
            readScalars(2, s(p), (at, stream) =>
              cuda.pairwise(a(chosen), a(rejected), aOpt(margin), chosen.shape[0]!, eps, c, a(gradChosen), a(gradRejected), at(0), at(1), stream),
            ),
          ),
        ),
        E.map(({ scalars, gradChosen, gradRejected }) => ({ loss: scalars[0]!, accuracy: scalars[1]!, gradChosen: theirs(gradChosen), gradRejected: theirs(gradRejected) })),
      ),
    ranking: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('rewards', () => expectDevice('float32', undefined, 2)('rewards', i?.rewards)),
        E.bind('ranks', ({ rewards }) => expectDevice('int32', rewards.shape)('ranks', i.ranks)),
        E.bind('grad', ({ rewards }) => output(rewards.shape, out.grad)('grad')),
        E.bind('scalars', ({ rewards, ranks, grad }) =>
          attempt(() =>
            readScalars(3, s(p), (at, stream) =>
              cuda.ranking(a(rewards), a(ranks), rewards.shape[0]!, rewards.shape[1]!, a(grad), at(0), at(1), at(2), stream),
            ),
          ),
        ),
        E.chain(({ scalars, grad }) => {
          const pairs = Number(new BigInt64Array(scalars.buffer)[2]);
          return pairs === 0
            ? E.left(emptyError('ranking: no prompt has two slots of different rank, so there is no pair to compare'))
            : E.right({ loss: scalars[0]!, accuracy: scalars[1]!, pairs, grad: theirs(grad) });
        }),
      ),
    dpo: (p = {}, out = {}) => (i) =>
      pipe(
        E.Do,
        E.bind('pc', () => vector('policyChosen', i?.policyChosen)),
        E.bind('pr', ({ pc }) => expectDevice('float32', pc.shape)('policyRejected', i.policyRejected)),
        E.bind('rc', ({ pc }) => expectDevice('float32', pc.shape)('refChosen', i.refChosen)),
        E.bind('rr', ({ pc }) => expectDevice('float32', pc.shape)('refRejected', i.refRejected)),
        E.bind('beta', () => positive('beta', p.beta, 0.1)),
        E.bind('lossType', () => oneOf('lossType', p.lossType, 'sigmoid', DPO_LOSS_TYPES)),
        E.bind('eps', () => labelSmoothingParam(p.labelSmoothing)),
        E.bind('gradPolicyChosen', ({ pc }) => output(pc.shape, out.gradPolicyChosen)('gradPolicyChosen')),
        E.bind('gradPolicyRejected', ({ pc }) => output(pc.shape, out.gradPolicyRejected)('gradPolicyRejected')),
        E.bind('rewardsChosen', ({ pc }) => output(pc.shape, out.rewardsChosen)('rewardsChosen')),
        E.bind('rewardsRejected', ({ pc }) => output(pc.shape, out.rewardsRejected)('rewardsRejected')),
        E.bind('scalars', (v) =>
          attempt(() =>
            readScalars(2, s(p), (at, stream) =>
              cuda.dpo(a(v.pc), a(v.pr), a(v.rc), a(v.rr), v.pc.shape[0]!, v.beta, DPO_LOSS_CODE[v.lossType], v.eps,
                a(v.gradPolicyChosen), a(v.gradPolicyRejected), a(v.rewardsChosen), a(v.rewardsRejected), at(0), at(1), stream),
            ),
          ),
        ),
        E.map((v) => ({
          loss: v.scalars[0]!,
          accuracy: v.scalars[1]!,
          gradPolicyChosen: theirs(v.gradPolicyChosen),
          gradPolicyRejected: theirs(v.gradPolicyRejected),
          rewardsChosen: theirs(v.rewardsChosen),
          rewardsRejected: theirs(v.rewardsRejected),
        })),
      ),
  });

  return {
    name: cuda.deviceName(),
    defaultStream,
    createStream: () => attempt(() => new CudaStream(cuda)),
    alloc: (dtype, shape) => guarded(() => alloc(dtype, shape)),
    upload: <D extends DeviceDType>(t: Tensor<D>, stream?: CudaStream, into?: DeviceTensor<D>) =>
      guarded(() =>
        pipe(
          // a float32 or int32 tensor whose array holds exactly its shape: the copy's length is the array's,
          // so the check and the copy see one snapshot of the tensor's fields
          expectTensor(['float32', 'int32'] as D[])('upload', t === null || typeof t !== 'object' ? t : { dtype: t.dtype, shape: t.shape, data: t.data }),
          E.chain((h) =>
            pipe(
              into ? expectDevice(h.dtype, h.shape)('into', into) : alloc(h.dtype, h.shape),
              E.chainFirst((d) =>
                h.data.byteLength > d.buffer.bytes // the last word: never copy past the allocation
                  ? E.left(shapeError(`upload: ${h.data.byteLength} bytes do not fit a device buffer of ${d.buffer.bytes}`))
                  : attempt(() => cuda.upload(d.buffer.address, 0, h.data, streamAddress(stream))),
              ),
              E.map(theirs),
            ),
          ),
        ),
      ),
    download,
    synchronize: (stream?: CudaStream) => attempt(() => cuda.synchronize(streamAddress(stream))),
    kernels,
    setRowTuning: (maxCluster, cacheRows) =>
      guarded(() =>
        pipe(
          integerParam('maxCluster', maxCluster, 0),
          E.chain((m) => (m >= 0 ? E.right(m) : E.left(paramError(`maxCluster must be >= 0, got ${m}`)))),
          E.chain((m) => E.map((c: boolean) => cuda.setRowTuning(m, c))(booleanParam('cacheRows', cacheRows, false))),
        ),
      ),
    lastLaunch: () => cuda.lastLaunch(),
  };
};
