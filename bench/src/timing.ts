import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { busyCores, machineCpuTimes } from './machineLoad.js';

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly reps: number;
  /** Process CPU time (all threads) over wall time while timing: a kernel on T threads that had its cores shows ≈ T. */
  readonly cpuPerWall: number;
  /** Cores that other processes kept busy meanwhile (from /proc/stat; absent where it cannot be read). */
  readonly otherBusyCores?: number;
}

/**
 * Times `run` after one warm-up call (which also faults in any page the call touches first).
 * Fast calls get more repetitions, up to `maxReps` or about `budgetMs` of measuring, so that a
 * 1 ms median is as steady as a 100 ms one.
 */
export const time = async (
  run: () => void | Promise<void>,
  { reps, maxReps = 200, budgetMs = 500 }: { readonly reps: number; readonly maxReps?: number; readonly budgetMs?: number },
): Promise<Timing> => {
  await run();
  const samples: number[] = [];
  const machine = machineCpuTimes();
  const cpu = process.cpuUsage();
  const started = performance.now();
  while (samples.length < reps || (samples.length < maxReps && performance.now() - started < budgetMs)) {
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
  }
  const wallMs = performance.now() - started;
  const { user, system } = process.cpuUsage(cpu);
  const cpuPerWall = (user + system) / 1000 / wallMs;
  const busy = busyCores(machine, machineCpuTimes(), os.availableParallelism());
  return {
    medianMs: median(samples),
    minMs: Math.min(...samples),
    maxMs: Math.max(...samples),
    reps: samples.length,
    cpuPerWall,
    ...(busy === undefined ? {} : { otherBusyCores: Math.max(0, busy - cpuPerWall) }),
  };
};
