import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { backend, type Kernels } from '@rlhf/kernels';
import { call, F32, integers, must, shaped, uniform } from './data.js';
import { loadOptionalModules } from './modules.js';

/**
 * Peak memory of the logprobs forward: the growth of the resident-set high-water mark during one
 * call, with the inputs and the output buffers already allocated and touched. On Linux the mark
 * (VmHWM) is reset just before the call, so the figure is the call's own; elsewhere getrusage's
 * maxrss gives an upper bound. Measured in a fresh child process when running compiled. The fused
 * kernel should add O(N) at most: growth near the size of the logits would mean that something of
 * size [N, V] was materialised.
 */
export interface PeakMemory {
  readonly backend: string;
  readonly shape: readonly [number, number];
  /** Bytes of the inputs (logits and labels) and of the outputs (logprobs, entropy). */
  readonly inputBytes: number;
  readonly outputBytes: number;
  /** Growth of the peak resident set during the call. */
  readonly peakGrowthBytes: number;
  /** `child` (a fresh process) or `in-process` (vitest runs the sources, which a child cannot). */
  readonly method: 'child' | 'in-process';
  /** How the peak was read. */
  readonly highWaterMark: string;
}

/** Allowance for what any call may touch once (thread stacks, lazily mapped code): 16 MiB + 64 bytes a row. */
export const peakAllowance = (N: number): number => 16 * 2 ** 20 + 64 * N;

const maxRss = (): number => process.resourceUsage().maxRSS * 1024;

/** VmRSS and VmHWM (the resident high-water mark) of this process, in bytes (Linux). */
const procStatus = (): { rss: number; hwm: number } | undefined => {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    return Number.isFinite(rss) && Number.isFinite(hwm) ? { rss, hwm } : undefined;
  } catch {
    return undefined;
  }
};

/** Resets VmHWM to the current resident set (Linux ≥ 4.0), so that only the call's own peak shows. */
const resetPeak = (): boolean => {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return procStatus() !== undefined;
  } catch {
    return false;
  }
};

export const forwardPeak = (k: Kernels, N: number, V: number, method: PeakMemory['method']): PeakMemory => {
  const inputs = { logits: shaped(uniform(N * V, -8, 8, 90), [N, V]), labels: shaped(integers(N, V, 91), [N]) };
  const out = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
  out.logprobs.fill(0);
  out.entropy.fill(0);
  // Exact where the high-water mark can be reset; otherwise from the resident set now to the
  // process's peak, which an earlier peak can only make larger than the call's own.
  const exact = resetPeak();
  const before = exact ? procStatus()!.rss : process.memoryUsage().rss;
  call(k.logprobs({}, out)(inputs));
  const after = exact ? procStatus()!.hwm : maxRss();
  return {
    backend: k.name,
    shape: [N, V],
    inputBytes: N * V * F32 + N * Int32Array.BYTES_PER_ELEMENT,
    outputBytes: 2 * N * F32,
    peakGrowthBytes: Math.max(0, after - before),
    method,
    highWaterMark: exact ? 'VmHWM reset just before the call' : 'getrusage maxrss (an upper bound)',
  };
};

const thisFile = fileURLToPath(import.meta.url);

/**
 * Measures in a child process when this module runs compiled (`node bench/dist/run.js`); from
 * TypeScript sources (vitest) it measures in this process.
 */
export const measureForwardPeak = async (k: Kernels, N: number, V: number): Promise<PeakMemory> => {
  if (!thisFile.endsWith('.js')) return forwardPeak(k, N, V, 'in-process');
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [thisFile, k.name, String(N), String(V)], { maxBuffer: 1 << 20 }, (error, out, err) =>
      error ? reject(new Error(`peak-memory child failed: ${err || error.message}`)) : resolve(out),
    ),
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as PeakMemory;
};

const childMain = async (): Promise<void> => {
  const [name, N, V] = process.argv.slice(2);
  if (name !== 'js') await loadOptionalModules();
  const k = must(backend(name!));
  process.stdout.write(`${JSON.stringify(forwardPeak(k, Number(N), Number(V), 'child'))}\n`);
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  childMain().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
