import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatAb, interleave, pairedStats, runAb } from '../src/ab.js';
import { measureBandwidth } from '../src/bandwidth.js';
import { formatTable, toMarkdown } from '../src/report.js';
import { parseCli, writeResults } from '../src/run.js';
import { BENCHES, runSuite, type SuiteResult } from '../src/suite.js';
import { evaluateTargets } from '../src/targets.js';
import { median, time } from '../src/timing.js';
import type { BenchRecord } from '../src/types.js';

describe('the benchmark suite in quick mode', () => {
  let result: SuiteResult;
  let dir: string;

  it('runs every benchmark on the js backend and writes one well-formed record per case', async () => {
    result = await runSuite({ filters: [], reps: 2, jsReps: 2, quick: true, memory: true });
    dir = mkdtempSync(join(tmpdir(), 'rlhf-bench-'));
    const { json, markdown } = writeResults(result, dir);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as SuiteResult;

    expect(parsed.method.buffersReused).toBe(true);
    const bw = parsed.bandwidth;
    expect(bw.readGBs).toBeGreaterThan(0);
    expect(bw.copyGBs).toBeGreaterThan(0);
    // The best over the probes, and never below what one thread reads.
    expect(bw.readGBs).toBe(Math.max(bw.readByMethod.memchr, bw.readByMethod.memcmp, bw.readGBsOneThread));
    expect(bw.copyGBs).toBe(Math.max(...parsed.bandwidthProbes.map((p) => p.copyGBs), bw.copyGBsOneThread));
    expect(parsed.bandwidthProbes).toHaveLength(BENCHES.length + 1); // at the start and after each benchmark

    const ops = new Set(parsed.records.map((r) => r.op));
    for (const bench of BENCHES) expect(ops).toContain(bench.op);
    expect(parsed.records.filter((r) => r.op === 'logprobs' && r.backend === 'js')).toHaveLength(2); // both quick shapes
    for (const r of parsed.records) {
      expect(BENCHES.map((b) => b.op)).toContain(r.op);
      expect(typeof r.backend).toBe('string');
      expect(r.shape.length).toBeGreaterThan(0);
      for (const d of r.shape) expect(Number.isSafeInteger(d) && d > 0).toBe(true);
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.minMs).toBeLessThanOrEqual(r.medianMs);
      expect(r.maxMs).toBeGreaterThanOrEqual(r.medianMs);
      expect(r.reps).toBeGreaterThanOrEqual(2);
      expect(r.threads).toBe(r.backend === 'js' ? 1 : parsed.machine.threads);
      expect(r.cpuShare).toBeGreaterThan(0);
      expect(r.gbPerS).toBeCloseTo(r.bytes / (r.medianMs * 1e6), 9);
      const reference = r.reference === 'read' ? bw.readGBs : bw.copyGBs;
      expect(r.fractionOfBandwidth).toBeCloseTo(r.gbPerS / reference, 9);
    }
    // One record per (op, backend, shape).
    const keys = parsed.records.map((r) => `${r.op} ${r.backend} ${r.shape.join('x')}`);
    expect(new Set(keys).size).toBe(keys.length);
    // Unavailable backends (cuda without a GPU) are listed with a reason, not silently dropped.
    for (const s of parsed.skippedBackends) expect(s.reason.length).toBeGreaterThan(0);
    expect(parsed.peakMemory.find((p) => p.backend === 'js')?.inputBytes).toBe(8 * 64 * 4 + 8 * 4);

    const md = readFileSync(markdown, 'utf8');
    for (const heading of ['## Machine', '## Memory bandwidth', '## Results', '## Targets', 'quoted from issue 3']) expect(md).toContain(heading);
    expect(md).toContain('reused');
    expect(formatTable(result)).toContain('median ms');
    rmSync(dir, { recursive: true, force: true });
  });

  it('filters by op name and backend', async () => {
    const filtered = await runSuite({ filters: ['rank'], backends: ['js'], reps: 1, jsReps: 1, quick: true, memory: false });
    expect(new Set(filtered.records.map((r) => r.op))).toEqual(new Set(['ranking']));
    expect(filtered.records.every((r) => r.backend === 'js')).toBe(true);
    expect(filtered.peakMemory).toEqual([]);
  });
});

describe('targets', () => {
  const bandwidth = {
    threads: 2,
    readGBs: 50,
    readByMethod: { memchr: 45, memcmp: 50 },
    copyGBs: 60,
    readGBsOneThread: 28,
    copyGBsOneThread: 30,
    bufferBytes: 1,
    reps: 1,
    method: 'test',
  };
  const record = (op: string, backend: string, shape: number[], medianMs: number, bytes: number, reference: 'read' | 'copy'): BenchRecord => {
    const gbPerS = bytes / (medianMs * 1e6);
    const fractionOfBandwidth = gbPerS / (reference === 'read' ? 50 : 60);
    return { op, backend, shape, medianMs, gbPerS, fractionOfBandwidth, reference, bytes, reps: 3, minMs: medianMs, maxMs: medianMs, threads: 2, cpuShare: 0.97 };
  };
  const NV = 4096 * 32000 * 4;

  it('judges each target against its threshold and says what limits a missed one', () => {
    const records = [
      { ...record('logprobs', 'cpu', [4096, 32000], 14, NV, 'read'), speedupOverJs: 30 }, // 37 GB/s = 75% of 50
      record('logprobsBackward', 'cpu', [4096, 32000], (2 * NV) / 33e6, 2 * NV, 'copy'), // 33 GB/s = 55% of 60: missed
      record('klFull', 'cpu', [2048, 32000], 20, 3 * 2048 * 32000 * 4, 'copy'),
      record('ranking', 'cpu', [100_000, 8], 2.5, 9.6e6, 'copy'),
    ];
    const targets = evaluateTargets(records, bandwidth, [
      { backend: 'cpu', shape: [4096, 32000], inputBytes: NV, outputBytes: 1, peakGrowthBytes: 2 ** 20, method: 'child', highWaterMark: 'test' },
    ]);
    const status = (prefix: string) => targets.find((t) => t.target.startsWith(prefix))!;
    expect(status('logprobs + entropy forward [4096×32000] ≥ 70%').status).toBe('met');
    expect(status('logprobs + entropy forward [4096×32000] ≥ 70%').figure).toContain('fastest repetition 14.00 ms = 75%');
    expect(status('logprobs + entropy forward [4096×32000] ≥ 25×').status).toBe('met');
    expect(status('logprobs + entropy forward [4096×32000] ≥ 15× PyTorch').status).toBe('met');
    const backward = status('logprobs backward');
    expect(backward.status).toBe('missed');
    expect(backward.figure).toContain('55%');
    expect(backward.limitedBy).toContain('memory-bound');
    expect(status('exact KL').status).toBe('met'); // 39 GB/s = 66% of 60
    expect(status('ranking').status).toBe('met');
    expect(status('peak memory').status).toBe('met');
  });

  it('blames CPU contention, not the kernel, when the kernel did not get its cores', () => {
    const slow = { ...record('logprobs', 'cpu', [4096, 32000], 60, NV, 'read'), cpuShare: 0.45 };
    const forward = evaluateTargets([slow], bandwidth, []).find((t) => t.target.includes('70%'))!;
    expect(forward.status).toBe('missed');
    expect(forward.limitedBy).toMatch(/kept 0.9 cores busy while timed: the shared machine was loaded/);
    expect(forward.limitedBy).toContain('about 19.4 GB/s'); // 8.74 GB/s over a 45% share
    const quiet = evaluateTargets([{ ...slow, cpuShare: 1 }], bandwidth, []).find((t) => t.target.includes('70%'))!;
    expect(quiet.limitedBy).not.toMatch(/cores? busy/);
    expect(quiet.limitedBy).toMatch(/compute-bound/);
  });

  it('tells a kernel that leaves its cores idle from one that lost them to other work', () => {
    const serial = { ...record('logprobs', 'cpu', [4096, 32000], 40, NV, 'read'), cpuShare: 0.5, otherBusyCores: 0.1 };
    const idle = evaluateTargets([serial], bandwidth, []).find((t) => t.target.includes('70%'))!;
    expect(idle.limitedBy).toMatch(/kept 1.0 core busy while timed, the others sat idle/);
    expect(idle.limitedBy).toMatch(/does not use its threads/);
    const loaded = evaluateTargets([{ ...serial, otherBusyCores: 1 }], bandwidth, []).find((t) => t.target.includes('70%'))!;
    expect(loaded.limitedBy).toMatch(/and other processes 1.0 core: the shared machine was loaded/);
  });

  it('reports targets without a native backend as not measured', () => {
    const targets = evaluateTargets([record('logprobs', 'js', [4096, 32000], 2000, NV, 'read')], bandwidth, []);
    expect(targets.every((t) => t.status === 'not measured' && t.limitedBy)).toBe(true);
  });

  it('flags a forward that materialises [N, V] and a slow ranking loss', () => {
    const targets = evaluateTargets([record('ranking', 'cpu', [100_000, 8], 7, 9.6e6, 'copy')], bandwidth, [
      { backend: 'cpu', shape: [4096, 32000], inputBytes: NV, outputBytes: 1, peakGrowthBytes: NV, method: 'child', highWaterMark: 'test' },
    ]);
    expect(targets.find((t) => t.target.startsWith('ranking'))!.status).toBe('missed');
    expect(targets.find((t) => t.target.startsWith('peak memory'))!.status).toBe('missed');
  });
});

describe('the command line and the helpers', () => {
  it('parses filters and options, and writes the committed results only for a full run', () => {
    const o = parseCli(['logprobs', 'klFull', '--backend', 'js,cpu', '--reps', '7', '--js-reps', '2', '--no-memory', '--quick']);
    expect(o).toMatchObject({ filters: ['logprobs', 'klFull'], backends: ['js', 'cpu'], reps: 7, jsReps: 2, memory: false, quick: true });
    expect(o).not.toHaveProperty('outDir');
    expect(parseCli([])).toMatchObject({ filters: [], reps: 15, jsReps: 3, quick: false, memory: true });
    expect((parseCli([]) as { outDir: string }).outDir).toMatch(/bench\/results\/$/);
    for (const partial of [['ranking'], ['--backend', 'cpu'], ['--quick']]) expect(parseCli(partial), partial.join(' ')).not.toHaveProperty('outDir');
    expect(parseCli(['ranking', '--out', '/tmp/x'])).toHaveProperty('outDir', '/tmp/x');
    expect(() => parseCli(['--reps', '0'])).toThrow(/positive integer/);
    expect(parseCli(['--help'])).toBe('help');
  });

  it('takes medians and repeats fast calls', async () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    let calls = 0;
    const t = await time(() => void calls++, { reps: 5, maxReps: 20, budgetMs: 1000 });
    expect(t.reps).toBe(20);
    expect(calls).toBe(21); // one warm-up
  });

  it('times two cases interleaved and compares each pair with itself', async () => {
    // A fake clock: a call of `a` takes 3 units, of `b` 2, except that the machine gets slower over
    // time (+1 per call): cases timed one after the other would see the drift, the pairs do not.
    let clock = 0;
    let load = 0;
    const order: string[] = [];
    const call = (name: string, cost: number) => () => {
      order.push(name);
      clock += cost + load++ * 0.01;
    };
    const t = await interleave(call('a', 3), call('b', 2), 4, () => clock);
    expect(order).toEqual(['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']); // one warm-up each, then a b, b a, …
    expect(t.pairs).toBe(4);
    expect(t.bFaster).toBe(4);
    expect(t.ratio).toBeGreaterThan(1.45);
    expect(t.ratio).toBeLessThan(1.5);
    expect(pairedStats([4, 2, 6], [2, 2, 2])).toEqual({ pairs: 3, aMedianMs: 4, bMedianMs: 2, ratio: 2, bFaster: 2 });
    expect(() => pairedStats([1], [])).toThrow();
    expect(parseCli(['--ab', 'klFull,klFull.rowStats', '--pairs', '9'])).toMatchObject({ ab: ['klFull', 'klFull.rowStats'], pairs: 9 });
    expect(() => parseCli(['--ab', 'klFull'])).toThrow(/two op names/);
    expect(() => parseCli(['--ab', 'klFull,nope'])).toThrow(/two op names/);
  });

  it('runs an A/B comparison on the js backend over the shapes both benchmarks share', async () => {
    const [a, b] = ['logprobsBackward', 'logprobsBackward.rowStats'].map((op) => BENCHES.find((x) => x.op === op)!);
    const r = await runAb(a!, b!, { backend: 'js', pairs: 3, quick: true });
    expect(r).toMatchObject({ a: 'logprobsBackward', b: 'logprobsBackward.rowStats', backend: 'js' });
    expect(r.shapes.map((s) => s.shape)).toEqual(a!.shapes(true));
    for (const s of r.shapes) expect(s.aMedianMs > 0 && s.bMedianMs > 0 && s.pairs === 3).toBe(true);
    expect(formatAb(r)).toContain('B faster in');
    await expect(runAb(a!, BENCHES.find((x) => x.op === 'gae')!, { backend: 'js', pairs: 1, quick: true })).rejects.toThrow(/no shape in common/);
  });

  it('measures bandwidth with one and with several threads', async () => {
    const bw = await measureBandwidth(2, 4 * 2 ** 20, 2);
    expect(bw.threads).toBe(2);
    for (const x of [bw.readGBs, bw.copyGBs, bw.readGBsOneThread, bw.copyGBsOneThread]) expect(x).toBeGreaterThan(0);
  });
});

// Renders from a synthetic result, so the report's wording cannot drift from what the runner produces.
describe('the Markdown report', () => {
  it('marks missed targets and quotes the PyTorch figures as not measured here', async () => {
    const result = await runSuite({ filters: ['logprobs'], backends: ['js'], reps: 1, jsReps: 1, quick: true, memory: false });
    const md = toMarkdown(result);
    expect(md).toContain('**not measured**');
    expect(md).toContain('about 57 GB/s read and 64 GB/s copy');
    const contended = toMarkdown({ ...result, bandwidth: { ...result.bandwidth, threads: 2, readGBs: 30, readGBsOneThread: 29 } });
    expect(contended).toContain('**Warning**: 2 threads read only 1.03×');
    const quiet = toMarkdown({ ...result, bandwidth: { ...result.bandwidth, threads: 2, readGBs: 58, readGBsOneThread: 30 } });
    expect(quiet).not.toContain('**Warning**');
    expect(md).toContain('| logprobs (log-probs + entropy forward) | [4096×32000] | 233 |');
  });
});
