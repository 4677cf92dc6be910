import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The SIMD paths of the CPU kernels, best first. */
export type CpuIsa = 'avx512' | 'avx2' | 'sse2' | 'neon' | 'scalar';

/** Loss and accuracy as the native preference kernels return them. */
export interface NativeLossStats {
  readonly loss: number;
  readonly accuracy: number;
}

/**
 * The Node-API addon built from ../../native (native/binding/addon.cc). Float arrays are Float32Array,
 * labels and ranks Int32Array; arguments are positional, outputs are caller-provided arrays written in
 * place. A bad argument throws an Error whose `kind` is 'shape' | 'index' | 'param' | 'empty'
 * (the `...Async` forms reject with it instead).
 */
export interface NativeAddon {
  logprobs(
    logits: Float32Array, labels: Int32Array, N: number, V: number, temperature: number, ignoreIndex: number,
    logprobs: Float32Array, entropy: Float32Array, rowStats: Float32Array | null,
  ): void;
  logprobsBackward(
    logits: Float32Array, labels: Int32Array, gradLogprobs: Float32Array, gradEntropy: Float32Array | null,
    rowStats: Float32Array | null, N: number, V: number, temperature: number, ignoreIndex: number, gradLogits: Float32Array,
  ): void;
  logsoftmax(logits: Float32Array, N: number, V: number, temperature: number, out: Float32Array): void;
  logsoftmaxBackward(
    logits: Float32Array, gradOutput: Float32Array, N: number, V: number, temperature: number, gradLogits: Float32Array,
  ): void;
  klFull(
    logitsP: Float32Array, logitsQ: Float32Array, gradKl: Float32Array | null, savedStats: Float32Array | null, N: number,
    V: number, temperature: number, kl: Float32Array, gradLogitsP: Float32Array | null, rowStats: Float32Array | null,
  ): void;
  pairwise(
    chosen: Float32Array, rejected: Float32Array, margin: Float32Array | null, B: number, labelSmoothing: number,
    centerCoef: number, gradChosen: Float32Array, gradRejected: Float32Array,
  ): NativeLossStats;
  ranking(rewards: Float32Array, ranks: Int32Array, B: number, K: number, grad: Float32Array): NativeLossStats & { readonly pairs: number };
  /** lossType: 0 sigmoid, 1 hinge, 2 ipo. */
  dpo(
    policyChosen: Float32Array, policyRejected: Float32Array, refChosen: Float32Array, refRejected: Float32Array,
    B: number, beta: number, lossType: number, labelSmoothing: number, gradPolicyChosen: Float32Array,
    gradPolicyRejected: Float32Array, rewardsChosen: Float32Array, rewardsRejected: Float32Array,
  ): NativeLossStats;
  logprobsAsync(...args: Parameters<NativeAddon['logprobs']>): Promise<void>;
  logprobsBackwardAsync(...args: Parameters<NativeAddon['logprobsBackward']>): Promise<void>;
  logsoftmaxAsync(...args: Parameters<NativeAddon['logsoftmax']>): Promise<void>;
  logsoftmaxBackwardAsync(...args: Parameters<NativeAddon['logsoftmaxBackward']>): Promise<void>;
  klFullAsync(...args: Parameters<NativeAddon['klFull']>): Promise<void>;
  cpuIsa(): CpuIsa;
  supportedIsas(): CpuIsa[];
  /** '' = the best supported path. Throws a `param` error when this CPU or build lacks it. Returns the path in use. */
  forceIsa(isa: CpuIsa | ''): CpuIsa;
  /** n <= 0 restores the default (the machine's cores). Returns the count in use. */
  setNumThreads(n: number): number;
  getNumThreads(): number;
  readonly openmp: boolean;
  /** The C core's release ("MAJOR.MINOR.PATCH") and ABI number (rlhf_version, rlhf_abi_version). */
  readonly version: string;
  readonly abiVersion: number;
  /** Why the CUDA kernels are not in this build (set by native/binding/cuda_none.cc). */
  readonly cudaUnavailable?: string;
  /** The CUDA functions (native/binding/cuda_binding.cc), when built with CUDA. */
  readonly cuda?: unknown;
}

/**
 * The ABI these bindings were written for: RLHF_ABI_VERSION of native/include/rlhf/kernels.h (a test
 * keeps the two equal). An addon built from other sources, such as a build left over from before a
 * kernel's arguments changed, is refused instead of called with arguments it does not expect.
 */
export const NATIVE_ABI_VERSION = 2;

export type AddonLoad =
  | { readonly addon: NativeAddon; readonly path: string }
  | { readonly addon?: undefined; readonly path: string; readonly error: string };

// From packages/native/src (tests run from source) or packages/native/dist. In this repository the
// addon is built into native/build (two up); a packed @rlhf/native builds it into its own ./build
// (scripts/build.mjs decides the same way).
const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const inRepo = existsSync(resolve(packageDir, '../../native/include/rlhf/kernels.h'));
const buildDir = inRepo ? resolve(packageDir, '../../native/build') : resolve(packageDir, 'build');
const rebuild = inRepo ? '`pnpm --filter @rlhf/native build:native`' : '`npm rebuild @rlhf/native`';

/** Where the addon is: RLHF_NATIVE_ADDON, else <build>/Release/rlhf_native.node (see above). */
export const addonPath = (): string => process.env['RLHF_NATIVE_ADDON'] ?? resolve(buildDir, 'Release/rlhf_native.node');

/** Loads the addon, or says why it cannot (the reason the install script recorded, or the load error). */
export const loadAddon = (): AddonLoad => {
  const path = addonPath();
  if (!existsSync(path)) {
    const reasonFile = resolve(buildDir, 'UNAVAILABLE');
    const recorded = existsSync(reasonFile) ? readFileSync(reasonFile, 'utf8').trim() : '';
    return {
      path,
      error: recorded
        ? `the native addon was not built at install: ${recorded}`
        : `the native addon is not built (${path} is missing); run ${rebuild}`,
    };
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    return { path, error: `the native addon at ${path} failed to load: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (addon.abiVersion !== NATIVE_ABI_VERSION)
    return {
      path,
      error:
        `the native addon at ${path} was built from other sources (C ABI ${addon.abiVersion ?? 'unversioned'}, ` +
        `these packages need ${NATIVE_ABI_VERSION}); rebuild it: ${rebuild}`,
    };
  return { addon, path };
};

/** The C ABI's rlhf_dpo_loss values (native/include/rlhf/kernels.h). */
export const DPO_LOSS_CODE = { sigmoid: 0, hinge: 1, ipo: 2 } as const;
