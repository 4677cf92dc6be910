import os from 'node:os';
import { backend, backendStatus, type Kernels } from '@rlhf/kernels';
import * as E from 'fp-ts/lib/Either.js';
import { openBandwidthProbe, type BandwidthResult } from './bandwidth.js';
import { dpoBench } from './dpo.bench.js';
import { gaeBench, whitenBench } from './gae.bench.js';
import { klFullBench, klFullForwardBench, klFullSavedBench } from './klFull.bench.js';
import { logprobsAsyncBench, logprobsBench } from './logprobs.bench.js';
import { logprobsBackwardBench, logprobsBackwardSavedBench } from './logprobsBackward.bench.js';
import { logsoftmaxBench } from './logsoftmax.bench.js';
import { logsoftmaxBackwardBench } from './logsoftmaxBackward.bench.js';
import { loadOptionalModules, type OptionalModules } from './modules.js';
import { pairwiseBench } from './pairwise.bench.js';
import { measureForwardPeak, type PeakMemory } from './peakMemory.js';
import { klEstimateBench, shapeRewardsBench } from './klEstimate.bench.js';
import { ppoLossBench, ppoPolicyBench, ppoValueBench } from './ppo.bench.js';
import { rankingBench } from './ranking.bench.js';
import { evaluateTargets, type TargetResult } from './targets.js';
import { time } from './timing.js';
import type { Bench, BenchRecord, Shape, SkippedCase } from './types.js';

export const BENCHES: readonly Bench[] = [
  logprobsBench,
  logprobsAsyncBench,
  logprobsBackwardBench,
  logprobsBackwardSavedBench,
  logsoftmaxBench,
  logsoftmaxBackwardBench,
  klFullBench,
  klFullSavedBench,
  klFullForwardBench,
  rankingBench,
  pairwiseBench,
  dpoBench,
  gaeBench,
  whitenBench,
  ppoPolicyBench,
  ppoValueBench,
  ppoLossBench,
  klEstimateBench,
  shapeRewardsBench,
];

export interface SuiteOptions {
  /** Case-insensitive substrings of op names; empty runs every benchmark. */
  readonly filters: readonly string[];
  /** Backends to run; absent, every available one. */
  readonly backends?: readonly string[];
  /** Minimum repetitions on native backends (fast cases get more, see `time`). */
  readonly reps: number;
  /** Repetitions on the js backend, which takes seconds per call at the big sizes. */
  readonly jsReps: number;
  /** Tiny sizes, a small bandwidth buffer: for tests, and to check that everything runs. */
  readonly quick: boolean;
  /** Measure the forward's peak memory (one child process per backend). */
  readonly memory: boolean;
  /** Threads for the native kernels (and the bandwidth probe); absent, the native default. */
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  /** Threads used by the native kernels and by the bandwidth probe. */
  readonly threads: number;
  readonly cpuIsa?: string;
  readonly native?: unknown;
  /** 1-minute load averages when the run started and ended: other work on a shared machine makes figures noisy. */
  readonly loadAverageAtStart: number;
  readonly loadAverageAtEnd: number;
}

export interface SuiteResult {
  readonly generatedAt: string;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  /** The best figures over the probes: the reference for `fractionOfBandwidth`. */
  readonly bandwidth: BandwidthResult;
  /** Every probe of the run: at the start and after each benchmark. */
  readonly bandwidthProbes: readonly BandwidthResult[];
  readonly records: readonly BenchRecord[];
  readonly skipped: readonly SkippedCase[];
  readonly skippedBackends: readonly { readonly backend: string; readonly reason: string }[];
  readonly peakMemory: readonly PeakMemory[];
  readonly targets: readonly TargetResult[];
  readonly method: {
    readonly buffersReused: true;
    readonly reps: number;
    readonly jsReps: number;
    readonly description: string;
  };
  readonly bytesCounted: Readonly<Record<string, string>>;
}

/** A record before the bandwidth it is compared with is known. */
type Measured = Omit<BenchRecord, 'fractionOfBandwidth'>;

/**
 * The best figures over every probe of the run. With several threads the figure is at least the
 * one-thread figure: several threads can always do what one does, so a lower reading means the
 * probe itself was contended.
 */
const bestBandwidth = (probes: readonly BandwidthResult[]): BandwidthResult => {
  const best = (f: (b: BandwidthResult) => number): number => Math.max(...probes.map(f));
  const readGBsOneThread = best((b) => b.readGBsOneThread);
  const copyGBsOneThread = best((b) => b.copyGBsOneThread);
  return {
    ...probes[0]!,
    readGBs: Math.max(best((b) => b.readGBs), readGBsOneThread),
    readByMethod: { memchr: best((b) => b.readByMethod.memchr), memcmp: best((b) => b.readByMethod.memcmp) },
    copyGBs: Math.max(best((b) => b.copyGBs), copyGBsOneThread),
    readGBsOneThread,
    copyGBsOneThread,
    method: `${probes[0]!.method}; the best of ${probes.length} probes spread over the run (one after each benchmark)`,
  };
};

const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A filter selects the ops whose name contains it (case-insensitive). */
export const matchesFilter = (filter: string) => (bench: Bench): boolean => bench.op.toLowerCase().includes(filter.toLowerCase());

const matches = (filters: readonly string[]) => (bench: Bench): boolean =>
  filters.length === 0 || filters.some((f) => matchesFilter(f)(bench));

/** The named backends that are available (absent: every registered one), and why the others are not. */
export const selectKernels = (
  wanted: readonly string[] | undefined,
): { kernels: Kernels[]; skippedBackends: { backend: string; reason: string }[] } => {
  const status = backendStatus();
  const names = wanted ?? status.map((s) => s.name);
  const kernels: Kernels[] = [];
  const skippedBackends: { backend: string; reason: string }[] = [];
  for (const name of names) {
    const k = backend(name);
    if (E.isRight(k)) kernels.push(k.right);
    else skippedBackends.push({ backend: name, reason: k.left.message });
  }
  // Unselected but unavailable backends are still reported, so the results say why they are absent.
  for (const s of status) if (!s.available && !names.includes(s.name)) skippedBackends.push({ backend: s.name, reason: s.reason ?? 'unavailable' });
  return { kernels, skippedBackends };
};

const describeMachine = (modules: OptionalModules, threads: number, loadAverageAtStart: number): MachineInfo => {
  const native = modules.native.ok ? modules.native.module : undefined;
  const nativeStatus = (() => {
    try {
      return native?.nativeStatus?.();
    } catch (e) {
      return errorMessage(e);
    }
  })();
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    threads,
    ...(native?.cpuIsa ? { cpuIsa: native.cpuIsa() } : {}),
    ...(nativeStatus === undefined ? {} : { native: nativeStatus }),
    loadAverageAtStart,
    loadAverageAtEnd: os.loadavg()[0]!,
  };
};

/** Runs the selected benchmarks, each shape's buffers shared by every backend, and evaluates the targets. */
export const runSuite = async (options: SuiteOptions): Promise<SuiteResult> => {
  const log = options.log ?? (() => undefined);
  const loadAverageAtStart = os.loadavg()[0]!;
  const modules = await loadOptionalModules();
  const native = modules.native.ok ? modules.native.module : undefined;
  if (options.threads !== undefined) native?.setNumThreads?.(options.threads);
  const { kernels, skippedBackends } = selectKernels(options.backends);
  // The probe uses as many threads as the native kernels (without them, as many as there are cores).
  const nativeThreads = kernels.some((k) => k.name === 'cpu') ? native?.getNumThreads?.() : undefined;
  const threads = options.threads ?? nativeThreads ?? os.availableParallelism();
  const env = { kernels, modules };
  for (const s of skippedBackends) log(`skipping backend ${s.backend}: ${s.reason}`);

  // The probe stays open through the run and measures again after every benchmark: on a shared
  // machine one probe can land in a busy moment, and the best figures seen are the reference, so
  // that the fractions below are never flattered by a low probe.
  log(`measuring memory bandwidth with ${threads} thread(s)…`);
  const probe = await openBandwidthProbe(threads, options.quick ? 8 * 2 ** 20 : 512 * 2 ** 20);
  const probes: BandwidthResult[] = [];
  const measureBandwidthNow = (reps: number): void => {
    const bw = probe.measure(options.quick ? 2 : reps);
    probes.push(bw);
    log(`bandwidth: read ${bw.readGBs.toFixed(1)} GB/s, copy ${bw.copyGBs.toFixed(1)} GB/s`);
  };
  const measuredRecords: Measured[] = [];
  const skipped: SkippedCase[] = [];
  const benches = BENCHES.filter(matches(options.filters));
  try {
    measureBandwidthNow(9);
    for (const bench of benches) {
      for (const shape of bench.shapes(options.quick)) {
        const measured = await runShape(bench, shape, env, options, threads, log);
        measuredRecords.push(...measured.records);
        skipped.push(...measured.skipped);
      }
      measureBandwidthNow(5);
    }
  } finally {
    await probe.close();
  }

  const bandwidth = bestBandwidth(probes);
  const records = measuredRecords.map((r) => {
    const reference = r.reference === 'read' ? bandwidth.readGBs : bandwidth.copyGBs;
    return { ...r, fractionOfBandwidth: r.gbPerS / reference };
  });

  const peakMemory: PeakMemory[] = [];
  if (options.memory && benches.includes(logprobsBench)) {
    const [N, V] = options.quick ? [8, 64] : [4096, 32000];
    for (const k of kernels) {
      log(`peak memory of logprobs [${N}×${V}] on ${k.name}…`);
      try {
        peakMemory.push(await measureForwardPeak(k, N, V));
      } catch (e) {
        skipped.push({ op: 'logprobs (peak memory)', backend: k.name, shape: [N, V], reason: errorMessage(e) });
      }
    }
  }

  return {
    generatedAt: new Date().toISOString(),
    quick: options.quick,
    machine: describeMachine(modules, threads, loadAverageAtStart),
    bandwidth,
    bandwidthProbes: probes,
    records,
    skipped,
    skippedBackends,
    peakMemory,
    targets: evaluateTargets(records, bandwidth, peakMemory),
    method: {
      buffersReused: true,
      reps: options.reps,
      jsReps: options.jsReps,
      description:
        'Inputs and output buffers are allocated and touched once per (op, shape) and reused by every repetition ' +
        'and every backend (outputs passed through `out`), so page faults (~12 µs per 4 KiB page here) are not timed. ' +
        `One warm-up call, then the median of at least ${options.reps} repetitions on native backends and ` +
        `${options.jsReps} on js (seconds per call at the big sizes); fast cases repeat for about 0.5 s.`,
    },
    bytesCounted: Object.fromEntries(benches.map((b) => [b.op, b.bytesCounted])),
  };
};

const runShape = async (
  bench: Bench,
  shape: Shape,
  env: { readonly kernels: readonly Kernels[]; readonly modules: OptionalModules },
  options: SuiteOptions,
  nativeThreads: number,
  log: (line: string) => void,
): Promise<{ records: Measured[]; skipped: SkippedCase[] }> => {
  const label = `${bench.op} [${shape.join('×')}]`;
  const skipped: SkippedCase[] = [];
  let workload;
  try {
    workload = bench.setup(shape, env);
  } catch (e) {
    return { records: [], skipped: [{ op: bench.op, backend: '*', shape, reason: `setup failed: ${errorMessage(e)}` }] };
  }
  const notRun =
    workload.runners.length === 0 && !workload.skipped?.length
      ? [{ backend: '*', reason: 'no selected backend runs it (the TypeScript-only ops run on js)' }]
      : [];
  for (const s of [...(workload.skipped ?? []), ...notRun]) {
    log(`${label} ${s.backend}: skipped (${s.reason})`);
    skipped.push({ op: bench.op, shape, ...s });
  }
  const measured: Measured[] = [];
  for (const { backend: name, run } of workload.runners) {
    try {
      const t = await time(run, { reps: name === 'js' ? options.jsReps : options.reps });
      const gbPerS = workload.bytes / (t.medianMs * 1e6);
      const threads = name === 'js' ? 1 : nativeThreads;
      measured.push({
        op: bench.op,
        backend: name,
        shape: [...shape],
        medianMs: t.medianMs,
        gbPerS,
        reference: workload.reference,
        bytes: workload.bytes,
        reps: t.reps,
        minMs: t.minMs,
        maxMs: t.maxMs,
        threads,
        cpuShare: t.cpuPerWall / threads,
        ...(t.otherBusyCores === undefined ? {} : { otherBusyCores: t.otherBusyCores }),
      });
      log(`${label} ${name}: ${t.medianMs.toFixed(3)} ms, ${gbPerS.toFixed(2)} GB/s, cpu share ${((100 * t.cpuPerWall) / threads).toFixed(0)}%`);
    } catch (e) {
      log(`${label} ${name}: failed (${errorMessage(e)})`);
      skipped.push({ op: bench.op, backend: name, shape, reason: `failed: ${errorMessage(e)}` });
    }
  }
  const js = measured.find((r) => r.backend === 'js');
  const records = measured.map((r) => (js && r.backend !== 'js' ? { ...r, speedupOverJs: js.medianMs / r.medianMs } : r));
  return { records, skipped };
};
