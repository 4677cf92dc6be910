import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { median } from './timing.js';

/**
 * This machine's memory bandwidth, measured in the same run as the kernels, with the same number
 * of threads. A JavaScript loop cannot saturate memory, so the probe times glibc's vectorised
 * routines, reached through Node's Buffer: for read, `memchr` (Buffer#indexOf of a byte that is
 * absent) and `memcmp` (Buffer.compare of two equal halves), keeping the faster, so that the
 * targets are judged against the most the machine showed; for copy, `memmove` (TypedArray#set). Each of `threads` worker threads works on its own
 * slice of one SharedArrayBuffer; the main thread times from the start signal until all are done.
 * Pages are touched before timing (page faults here cost ~12 µs per 4 KiB page).
 */
export interface BandwidthResult {
  readonly threads: number;
  /** Bytes read per second / 1e9, `threads` threads: the faster of memchr and memcmp. */
  readonly readGBs: number;
  /** Both read figures, `threads` threads. */
  readonly readByMethod: { readonly memchr: number; readonly memcmp: number };
  /** (Bytes read + bytes written) per second / 1e9, `threads` threads (memmove). */
  readonly copyGBs: number;
  readonly readGBsOneThread: number;
  readonly copyGBsOneThread: number;
  readonly bufferBytes: number;
  readonly reps: number;
  readonly method: string;
}

// Control words shared with the workers.
const GENERATION = 0; // bumped to start a round
const DONE = 1; // workers that finished the round
const TASK = 2; // what to do: see Task
const ACTIVE = 3; // how many workers take part

const Task = { Exit: 0, Scan: 1, Compare: 2, Copy: 3 } as const;
type Task = (typeof Task)[keyof typeof Task];

// Plain CommonJS, evaluated in each worker (no file to resolve, so it runs from source and from dist).
const WORKER = `
const { workerData } = require('node:worker_threads');
const { control, memory, index } = workerData;
const ctl = new Int32Array(control);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, ${GENERATION}, seen);
  seen = Atomics.load(ctl, ${GENERATION});
  const task = Atomics.load(ctl, ${TASK});
  if (task === ${Task.Exit}) break;
  const active = Atomics.load(ctl, ${ACTIVE});
  if (index < active) {
    const half = memory.byteLength / 2;
    if (task === ${Task.Scan}) {
      const slice = Math.floor(memory.byteLength / active / 4096) * 4096;
      if (Buffer.from(memory, index * slice, slice).indexOf(0xff) !== -1) throw new Error('probe buffer corrupted');
    } else {
      const slice = Math.floor(half / active / 4096) * 4096;
      const a = new Uint8Array(memory, index * slice, slice);
      const b = new Uint8Array(memory, half + index * slice, slice);
      if (task === ${Task.Copy}) b.set(a);
      else if (Buffer.compare(a, b) !== 0) throw new Error('probe buffer corrupted');
    }
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
  }
}
`;

/** A probe kept open through a run: its buffer stays touched and its workers wait, so probing again is cheap. */
export interface BandwidthProbe {
  /** Read and copy bandwidth with one and with `threads` threads, median of `reps`. */
  readonly measure: (reps: number) => BandwidthResult;
  readonly close: () => Promise<void>;
}

/** Starts `threads` workers over a `bufferBytes` buffer whose pages are touched once, here. */
export const openBandwidthProbe = async (threads: number, bufferBytes: number): Promise<BandwidthProbe> => {
  const control = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
  const ctl = new Int32Array(control);
  const memory = new SharedArrayBuffer(bufferBytes);
  new Uint8Array(memory).fill(1); // touch every page; 0xff never occurs and the halves are equal, so both reads read it all
  const workers = Array.from(
    { length: threads },
    (_, index) => new Worker(WORKER, { eval: true, workerData: { control, memory, index } }),
  );
  let failed: unknown;
  const failure = new Promise<never>((_, reject) =>
    workers.forEach((w) =>
      w.once('error', (e) => {
        failed = e;
        reject(e);
      }),
    ),
  );
  failure.catch(() => undefined); // reported through `failed` once the race is over
  const close = async (): Promise<void> => {
    Atomics.store(ctl, TASK, Task.Exit);
    Atomics.add(ctl, GENERATION, 1);
    Atomics.notify(ctl, GENERATION);
    await Promise.all(workers.map((w) => w.terminate()));
  };
  try {
    await Promise.race([Promise.all(workers.map((w) => new Promise((resolve) => w.once('online', resolve)))), failure]);
  } catch (e) {
    await close();
    throw e;
  }

  const round = (task: Task, active: number): number => {
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, TASK, task);
    Atomics.store(ctl, ACTIVE, active);
    const start = performance.now();
    Atomics.add(ctl, GENERATION, 1);
    Atomics.notify(ctl, GENERATION);
    for (let done = Atomics.load(ctl, DONE); done < active; done = Atomics.load(ctl, DONE)) {
      Atomics.wait(ctl, DONE, done, 1_000);
      if (failed !== undefined || performance.now() - start > 60_000) throw new Error(`bandwidth probe failed: ${String(failed ?? 'timed out')}`);
    }
    return performance.now() - start;
  };
  // Bytes actually moved: whole 4 KiB-aligned slices per active worker.
  const moved = (task: Task, active: number): number =>
    task === Task.Scan
      ? Math.floor(bufferBytes / active / 4096) * 4096 * active
      : 2 * Math.floor(bufferBytes / 2 / active / 4096) * 4096 * active;

  const measure = (reps: number): BandwidthResult => {
    const gbPerS = (task: Task, active: number): number => {
      round(task, active); // warm-up
      const ms = median(Array.from({ length: reps }, () => round(task, active)));
      return moved(task, active) / (ms * 1e6);
    };
    const readGBsOneThread = Math.max(gbPerS(Task.Scan, 1), gbPerS(Task.Compare, 1));
    const copyGBsOneThread = gbPerS(Task.Copy, 1);
    const readByMethod = { memchr: gbPerS(Task.Scan, threads), memcmp: gbPerS(Task.Compare, threads) };
    const copyGBs = threads === 1 ? copyGBsOneThread : gbPerS(Task.Copy, threads);
    return {
      threads,
      readGBs: Math.max(readByMethod.memchr, readByMethod.memcmp),
      readByMethod,
      copyGBs,
      readGBsOneThread,
      copyGBsOneThread,
      bufferBytes,
      reps,
      method:
        'glibc memchr and memcmp (read: the faster) and memmove (copy: read + write bytes counted) on warm pages, ' +
        `one worker thread per kernel thread, median of ${reps}`,
    };
  };
  return { measure, close };
};

/** Measures read and copy bandwidth once, with 1 and with `threads` threads over a `bufferBytes` buffer. */
export const measureBandwidth = async (threads: number, bufferBytes: number, reps: number): Promise<BandwidthResult> => {
  const probe = await openBandwidthProbe(threads, bufferBytes);
  try {
    return probe.measure(reps);
  } finally {
    await probe.close();
  }
};
