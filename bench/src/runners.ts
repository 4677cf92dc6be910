import type { Kernels } from '@rlhf/kernels';
import type { BenchEnv, Runner } from './types.js';

/** One runner per selected Kernels backend, each calling `invoke` on the shared buffers. */
export const kernelRunners = (env: BenchEnv, invoke: (k: Kernels) => () => void): Runner[] =>
  env.kernels.map((k) => ({ backend: k.name, run: invoke(k) }));

/** The row kernels' realistic sizes: two common vocabularies (32 000 and Llama-3's 128 256). */
export const rowShapes = (quick: boolean): readonly (readonly [number, number])[] =>
  quick ? [[8, 64], [3, 257]] : [[2048, 32000], [4096, 32000], [1024, 128256]];

/**
 * The runner of a primitive implemented in TypeScript only (GAE, whitening, the PPO losses, the KL
 * estimators): it is the `js` backend, run when that backend is selected.
 */
export const typescriptRunners = (env: BenchEnv, run: () => void): Runner[] =>
  env.kernels.some((k) => k.name === 'js') ? [{ backend: 'js', run }] : [];

/** `[B, T]` of a PPO batch: 256 sequences of 1024 tokens. */
export const tokenShapes = (quick: boolean): readonly (readonly [number, number])[] => (quick ? [[4, 16]] : [[256, 1024]]);
