// A/B timing of two benchmarks on one backend, interleaved (`pnpm bench --ab A,B`): on a shared
// machine the load drifts over seconds, so two cases timed one after the other can differ by more
// than the change being measured. Calls alternate (a b, b a, a b, …) and each pair is compared with
// itself: the median of the per-pair ratios and how many pairs B won are what a drift cannot fake.
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadOptionalModules } from './modules.js';
import { selectKernels } from './suite.js';
import { median } from './timing.js';
import type { Bench, Shape } from './types.js';

export interface PairedTiming {
  readonly pairs: number;
  readonly aMedianMs: number;
  readonly bMedianMs: number;
  /** Median over the pairs of a's time over b's: above 1, B is faster. */
  readonly ratio: number;
  /** Pairs in which b took less time than a. */
  readonly bFaster: number;
}

export const pairedStats = (aMs: readonly number[], bMs: readonly number[]): PairedTiming => {
  if (aMs.length !== bMs.length || aMs.length === 0) throw new Error(`pairedStats: ${aMs.length} and ${bMs.length} samples`);
  return {
    pairs: aMs.length,
    aMedianMs: median(aMs),
    bMedianMs: median(bMs),
    ratio: median(aMs.map((a, i) => a / bMs[i]!)),
    bFaster: bMs.filter((b, i) => b < aMs[i]!).length,
  };
};

type Run = () => void | Promise<void>;

/** One warm-up call each, then `pairs` pairs in alternating order. `now` is the clock (ms). */
export const interleave = async (a: Run, b: Run, pairs: number, now: () => number = () => performance.now()): Promise<PairedTiming> => {
  const timed = async (run: Run): Promise<number> => {
    const t0 = now();
    await run();
    return now() - t0;
  };
  await a();
  await b();
  const aMs: number[] = [];
  const bMs: number[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      aMs.push(await timed(a));
      bMs.push(await timed(b));
    } else {
      bMs.push(await timed(b));
      aMs.push(await timed(a));
    }
  }
  return pairedStats(aMs, bMs);
};

export interface AbOptions {
  /** The backend both run on; absent, `cpu` where it loaded, else the first available one. */
  readonly backend?: string;
  readonly pairs: number;
  readonly quick: boolean;
  readonly threads?: number;
  readonly log?: (line: string) => void;
}

export interface AbResult {
  readonly a: string;
  readonly b: string;
  readonly backend: string;
  readonly loadAverage: readonly [number, number];
  readonly shapes: readonly (PairedTiming & { readonly shape: Shape })[];
}

/** Runs `a` and `b` interleaved on every shape both benchmark, each with its own buffers. */
export const runAb = async (a: Bench, b: Bench, options: AbOptions): Promise<AbResult> => {
  const loadAtStart = os.loadavg()[0]!;
  const modules = await loadOptionalModules();
  if (options.threads !== undefined && modules.native.ok) modules.native.module.setNumThreads?.(options.threads);
  const { kernels } = selectKernels(options.backend === undefined ? undefined : [options.backend]);
  const chosen = options.backend === undefined ? (kernels.find((k) => k.name === 'cpu') ?? kernels[0]) : kernels[0];
  if (chosen === undefined) throw new Error(`backend ${options.backend ?? '(any)'} is unavailable`);
  const env = { kernels: [chosen], modules };
  const key = (s: Shape) => s.join('×');
  const bShapes = new Set(b.shapes(options.quick).map(key));
  const shared = a.shapes(options.quick).filter((s) => bShapes.has(key(s)));
  if (shared.length === 0) throw new Error(`${a.op} and ${b.op} have no shape in common`);
  const runnerOf = (bench: Bench, shape: Shape): Run => {
    const runner = bench.setup(shape, env).runners.find((r) => r.backend === chosen.name);
    if (runner === undefined) throw new Error(`${bench.op} does not run on ${chosen.name}`);
    return runner.run;
  };
  const shapes = [];
  for (const shape of shared) {
    const t = await interleave(runnerOf(a, shape), runnerOf(b, shape), options.pairs);
    options.log?.(`[${key(shape)}] ${a.op} ${t.aMedianMs.toFixed(3)} ms, ${b.op} ${t.bMedianMs.toFixed(3)} ms, ratio ${t.ratio.toFixed(3)}`);
    shapes.push({ shape, ...t });
  }
  return { a: a.op, b: b.op, backend: chosen.name, loadAverage: [loadAtStart, os.loadavg()[0]!], shapes };
};

export const formatAb = (r: AbResult): string => {
  const pairs = r.shapes[0]?.pairs ?? 0;
  return [
    `A = ${r.a}, B = ${r.b}, on ${r.backend}: calls interleaved (a b, b a, …), medians of ${pairs} pairs; ` +
      `1-min load ${r.loadAverage[0].toFixed(2)} at the start, ${r.loadAverage[1].toFixed(2)} at the end, on ${os.availableParallelism()} cores`,
    ...r.shapes.map(
      (s) =>
        `  [${s.shape.join('×')}]  A ${s.aMedianMs.toFixed(3)} ms  B ${s.bMedianMs.toFixed(3)} ms  ` +
        `A/B per pair ${s.ratio.toFixed(3)}×  B faster in ${s.bFaster} of ${s.pairs}`,
    ),
  ].join('\n');
};
