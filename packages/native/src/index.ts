/**
 * @rlhf/native: loads the addon built from ../../native at install and registers the `cpu` backend
 * (and, through ./cuda.js, `cuda`) with @rlhf/kernels. Importing it is enough:
 * `import '@rlhf/native'` then `backend('cpu')`, or let `defaultBackend()` pick it.
 * Where the addon could not be built (no compiler at install) the backends stay unavailable with the
 * reason, `js` is used, and `nativeStatus()` says why.
 */
import * as E from 'fp-ts/lib/Either.js';
import { makeKernels, registerBackend, registerUnavailable, type Kernels, type RawKernels } from '@rlhf/kernels';
import { paramError, toRlhfError, type RlhfError } from '@rlhf/tensor';
import { loadAddon, type CpuIsa, type NativeAddon } from './addon.js';
import { makeCpuRaw } from './cpuRaw.js';
import { registerCuda } from './cuda.js';

export type { CpuIsa, NativeAddon, NativeLossStats, AddonLoad } from './addon.js';
export { NATIVE_ABI_VERSION, addonPath, loadAddon } from './addon.js';
export { ASYNC_MIN_ELEMENTS, makeCpuRaw } from './cpuRaw.js';
export { cudaDevice, cudaUnavailableReason } from './cuda.js';
export type {
  CudaDevice,
  CudaStream,
  DeviceBuffer,
  DeviceDType,
  DeviceKernels,
  DeviceTensor,
} from './device.js';

const load = loadAddon();
const loadError: string | undefined = 'error' in load ? load.error : undefined;

/** The addon, when it loaded (the CUDA side builds on it). */
export const addon: NativeAddon | undefined = load.addon;
/** The `cpu` backend's raw kernels (float32 native, float64 through js), when the addon loaded. */
export const cpuRaw: RawKernels | undefined = load.addon && makeCpuRaw(load.addon);
/** The `cpu` backend (also registered: `backend('cpu')`), when the addon loaded. */
export const cpu: Kernels | undefined = cpuRaw && makeKernels('cpu', cpuRaw);

if (cpu) registerBackend(cpu);
else registerUnavailable('cpu', loadError ?? 'the native addon did not load');
registerCuda(load.addon, loadError);

export type NativeStatus =
  | {
      readonly loaded: true;
      readonly path: string;
      /** The SIMD path in use. */
      readonly isa: CpuIsa;
      /** The paths this build and this CPU support, best first. */
      readonly supportedIsas: readonly CpuIsa[];
      readonly threads: number;
      readonly openmp: boolean;
      /** The C core's release and ABI number (librlhf's rlhf_version and rlhf_abi_version). */
      readonly version: string;
      readonly abiVersion: number;
    }
  | { readonly loaded: false; readonly path: string; readonly reason: string };

/** Whether the native kernels loaded, and if not, why (e.g. no C++ compiler at install). */
export const nativeStatus = (): NativeStatus =>
  load.addon
    ? {
        loaded: true,
        path: load.path,
        isa: load.addon.cpuIsa(),
        supportedIsas: load.addon.supportedIsas(),
        threads: load.addon.getNumThreads(),
        openmp: load.addon.openmp,
        version: load.addon.version,
        abiVersion: load.addon.abiVersion,
      }
    : { loaded: false, path: load.path, reason: loadError ?? 'the native addon did not load' };

const withAddon = <A>(f: (a: NativeAddon) => A): E.Either<RlhfError, A> =>
  load.addon
    ? E.tryCatch(() => f(load.addon!), toRlhfError)
    : E.left(paramError(`the native kernels are unavailable: ${loadError}`));

/** The SIMD path in use: 'avx512', 'avx2', 'sse2' (x86-64), 'neon' (AArch64) or 'scalar' (undefined without the addon). */
export const cpuIsa = (): CpuIsa | undefined => load.addon?.cpuIsa();

/** Forces a SIMD path (for tests: every path on one machine); null or '' restores the best one. */
export const forceIsa = (isa: CpuIsa | '' | null): E.Either<RlhfError, CpuIsa> => withAddon((a) => a.forceIsa(isa ?? ''));

/** Threads of the CPU kernels; n <= 0 restores the default (the machine's cores). Returns the count in use. */
export const setNumThreads = (n: number): E.Either<RlhfError, number> => withAddon((a) => a.setNumThreads(n));

/** Threads of the CPU kernels (1 without the addon: the js kernels are single-threaded). */
export const getNumThreads = (): number => load.addon?.getNumThreads() ?? 1;
