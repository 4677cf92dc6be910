import type { Kernels } from '@rlhf/kernels';
import type { OptionalModules } from './modules.js';

/** Sizes of one case, e.g. `[N, V]` for the row kernels or `[B, T]` for GAE. */
export type Shape = readonly number[];

/**
 * The bandwidth a case is compared with: `read` for kernels that only read big arrays,
 * `copy` (read + write bytes of a memmove) for kernels that also write one.
 */
export type Reference = 'read' | 'copy';

/** One backend's way of running a prepared workload once (it throws when the call returns an error). */
export interface Runner {
  readonly backend: string;
  readonly run: () => void | Promise<void>;
}

/** The inputs and output buffers of one (op, shape), allocated once and shared by every backend. */
export interface Workload {
  /** Bytes that must move per call (the inputs read once, the outputs written once). */
  readonly bytes: number;
  readonly reference: Reference;
  readonly runners: readonly Runner[];
  /** Backends that cannot run this op, with the reason. */
  readonly skipped?: readonly { readonly backend: string; readonly reason: string }[];
}

export interface BenchEnv {
  /** The Kernels backends selected for this run (js first). */
  readonly kernels: readonly Kernels[];
  readonly modules: OptionalModules;
}

/** One benchmark: an operation, its realistic sizes and how to set it up. */
export interface Bench {
  readonly op: string;
  /** How the bytes of a call are counted, for the report. */
  readonly bytesCounted: string;
  readonly shapes: (quick: boolean) => readonly Shape[];
  readonly setup: (shape: Shape, env: BenchEnv) => Workload;
}

/** One measured case, as written to latest.json. */
export interface BenchRecord {
  readonly op: string;
  readonly backend: string;
  readonly shape: Shape;
  readonly medianMs: number;
  readonly gbPerS: number;
  /** gbPerS over the `reference` bandwidth measured in the same run. */
  readonly fractionOfBandwidth: number;
  readonly reference: Reference;
  readonly bytes: number;
  readonly reps: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Threads the backend computes with (1 on js). */
  readonly threads: number;
  /**
   * CPU time over wall time while timing, divided by `threads`: near 1 when the kernel had its cores,
   * well below 1 when other work on the machine took them (then the figure understates the kernel).
   */
  readonly cpuShare: number;
  /** Cores other processes kept busy while this case was timed (Linux; absent elsewhere). */
  readonly otherBusyCores?: number;
  /** The js backend's median over this one, for the same op and shape (absent when js did not run). */
  readonly speedupOverJs?: number;
}

export interface SkippedCase {
  readonly op: string;
  readonly backend: string;
  readonly shape?: Shape;
  readonly reason: string;
}
