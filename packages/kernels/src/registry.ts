import * as E from 'fp-ts/lib/Either.js';
import { paramError, show, type RlhfError } from '@rlhf/tensor';
import { js } from './js/index.js';
import type { BackendName, Kernels } from './types.js';

export interface BackendStatus {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it is unavailable (no compiler at install, no GPU, no driver, …). */
  readonly reason?: string;
}

const BACKENDS: readonly BackendName[] = ['js', 'cpu', 'cuda'];
/**
 * Default order for host arrays: the native CPU kernels first. CUDA on host arrays pays two PCIe
 * copies per call, so it is never a default: it is chosen by name (or used through the device buffers).
 */
const PREFERENCE: readonly BackendName[] = ['cpu', 'js'];

const available = new Map<BackendName, Kernels>([['js', js]]);
const reasons = new Map<BackendName, string>([
  ['cpu', 'not registered: import "@rlhf/native" to load the native kernels'],
  ['cuda', 'not registered: import "@rlhf/native" to load the native kernels'],
]);
let chosen: BackendName | undefined;

/** Makes a backend available (the native package calls this for `cpu` and `cuda`). */
export const registerBackend = (kernels: Kernels): void => {
  available.set(kernels.name, kernels);
  reasons.delete(kernels.name);
};

/** Records why a backend cannot be used here, for `backendStatus` and error messages. */
export const registerUnavailable = (name: BackendName, reason: string): void => {
  available.delete(name);
  reasons.set(name, reason);
};

export const isBackendName = (u: unknown): u is BackendName => BACKENDS.includes(u as BackendName);

export const backend = (name: string): E.Either<RlhfError, Kernels> => {
  if (!isBackendName(name)) return E.left(paramError(`unknown backend ${show(name)}: expected one of ${BACKENDS.join(', ')}`));
  const k = available.get(name);
  return k ? E.right(k) : E.left(paramError(`backend '${name}' is unavailable: ${reasons.get(name) ?? 'unknown reason'}`));
};

export const availableBackends = (): BackendName[] => BACKENDS.filter((b) => available.has(b));

export const backendStatus = (): BackendStatus[] =>
  BACKENDS.map((name) =>
    available.has(name) ? { name, available: true } : { name, available: false, reason: reasons.get(name) ?? 'unknown' },
  );

/** Chooses the default backend explicitly (overrides RLHF_BACKEND and the preference order). */
export const setDefaultBackend = (name: BackendName): E.Either<RlhfError, Kernels> => {
  const k = backend(name);
  if (E.isRight(k)) chosen = name;
  return k;
};

/**
 * The backend used when a call names none: `setDefaultBackend`, else the `RLHF_BACKEND`
 * environment variable, else cpu when it loaded, else js. An `RLHF_BACKEND` that cannot be used
 * (unknown, or unavailable here) is not silently dropped: a process warning says so, once per value.
 */
export const defaultBackend = (): Kernels => {
  const env = typeof process !== 'undefined' ? process.env['RLHF_BACKEND'] : undefined;
  const usable = (name: string | undefined) => (name && isBackendName(name) ? available.get(name) : undefined);
  const named = usable(chosen) ?? usable(env);
  if (named) return named;
  const k = PREFERENCE.map(usable).find((b) => b !== undefined) ?? js;
  if (env) warnIgnoredEnv(env, k.name);
  return k;
};

const warnedEnv = new Set<string>();
const warnIgnoredEnv = (env: string, used: string): void => {
  if (warnedEnv.has(env)) return;
  warnedEnv.add(env);
  const why = isBackendName(env) ? `unavailable: ${reasons.get(env) ?? 'not registered'}` : `not one of ${BACKENDS.join(', ')}`;
  process.emitWarning(`RLHF_BACKEND=${env} is ${why}; using ${used}`, { code: 'RLHF_BACKEND' });
};

const KERNEL_OPS = ['logprobs', 'logprobsBackward', 'logsoftmax', 'logsoftmaxBackward', 'klFull', 'pairwise', 'ranking', 'dpo'] as const;
const isKernels = (u: unknown): u is Kernels =>
  typeof u === 'object' && u !== null && KERNEL_OPS.every((op) => typeof (u as Record<string, unknown>)[op] === 'function');

/** The backend a call asked for (a name or a Kernels object), or the default. */
export const resolveBackend = (k?: Kernels | BackendName | null): E.Either<RlhfError, Kernels> =>
  k === undefined || k === null
    ? E.right(defaultBackend())
    : typeof k === 'string'
      ? backend(k)
      : isKernels(k)
        ? E.right(k)
        : E.left(paramError(`backend must be a backend name (${BACKENDS.join(', ')}) or a Kernels object, got ${show(k)}`));
