import type { SuiteResult } from './suite.js';
import { BANDWIDTH_QUOTED, PYTORCH_QUOTED } from './targets.js';
import type { BenchRecord } from './types.js';

const shapeLabel = (shape: readonly number[]): string => `[${shape.join('×')}]`;
const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');
const ms = (x: number): string => (x >= 100 ? fixed(x, 0) : x >= 10 ? fixed(x, 1) : x >= 1 ? fixed(x, 2) : fixed(x, 3));

const COLUMNS = ['op', 'backend', 'shape', 'median ms', 'GB/s', 'of bw', 'vs js', 'reps', 'cpu share', 'others'] as const;

const row = (r: BenchRecord): string[] => [
  r.op,
  r.backend,
  shapeLabel(r.shape),
  ms(r.medianMs),
  fixed(r.gbPerS, 2),
  `${fixed(100 * r.fractionOfBandwidth, 1)}% ${r.reference}`,
  r.speedupOverJs === undefined ? '' : `${fixed(r.speedupOverJs, 1)}×`,
  String(r.reps),
  `${fixed(100 * r.cpuShare, 0)}%`,
  r.otherBusyCores === undefined ? '' : fixed(r.otherBusyCores, 1),
];

/** The console table: one line per case. */
export const formatTable = (result: SuiteResult): string => {
  const rows = [COLUMNS.map(String), ...result.records.map(row)];
  const widths = COLUMNS.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => (c >= 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ');
  const bw = result.bandwidth;
  return [
    `bandwidth (${bw.threads} threads): read ${fixed(bw.readGBs, 1)} GB/s, copy ${fixed(bw.copyGBs, 1)} GB/s ` +
      `(one thread: read ${fixed(bw.readGBsOneThread, 1)}, copy ${fixed(bw.copyGBsOneThread, 1)})`,
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
    ...result.skippedBackends.map((s) => `skipped backend ${s.backend}: ${s.reason}`),
    ...result.skipped.map((s) => `skipped ${s.op}${s.shape ? ` ${shapeLabel(s.shape)}` : ''} on ${s.backend}: ${s.reason}`),
    '',
    'targets:',
    ...result.targets.map((t) => `  [${t.status}] ${t.backend}: ${t.target} — ${t.figure}${t.limitedBy ? ` (${t.limitedBy})` : ''}`),
  ].join('\n');
};

/** latest.json: the machine, the bandwidth, one record per case, skipped cases and the targets. */
export const toJson = (result: SuiteResult): string => `${JSON.stringify(result, null, 2)}\n`;

/** A Markdown table; columns from `firstNumeric` on are right-aligned. */
const mdTable = (header: readonly string[], rows: readonly (readonly string[])[], firstNumeric = header.length): string[] => [
  `| ${header.join(' | ')} |`,
  `|${header.map((_, i) => (i >= firstNumeric ? '---:' : '---')).join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
];

/** latest.md: the same results for people, with the machine described and the targets judged. */
export const toMarkdown = (result: SuiteResult): string => {
  const m = result.machine;
  const bw = result.bandwidth;
  const gib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return [
    '# Benchmark results',
    '',
    `Generated ${result.generatedAt} by \`pnpm bench${result.quick ? ' --quick' : ''}\`.` +
      (result.quick ? ' **Quick mode: tiny sizes, not representative.**' : ''),
    '',
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.cores} cores available; ${m.memoryGiB} GiB memory; ${m.os}; Node ${m.node}`,
    `- Native kernels: ${m.threads} thread(s)${m.cpuIsa ? `, SIMD path ${m.cpuIsa}` : ''}${m.native === undefined ? '' : `; status ${JSON.stringify(m.native)}`}`,
    `- Load average (1 min): ${m.loadAverageAtStart.toFixed(2)} at the start, ${m.loadAverageAtEnd.toFixed(2)} at the end, on ${m.cores} cores. ` +
      'The machine is shared with other work (builds, tests), so figures are noisy: a load above the core count slows every case.',
    '',
    '## Memory bandwidth (measured in this run)',
    '',
    `- Read: **${fixed(bw.readGBs, 1)} GB/s** with ${bw.threads} thread(s), ${fixed(bw.readGBsOneThread, 1)} GB/s with one.`,
    `- Copy (read + write bytes): **${fixed(bw.copyGBs, 1)} GB/s** with ${bw.threads} thread(s), ${fixed(bw.copyGBsOneThread, 1)} GB/s with one.`,
    `- Probes (read / copy GB/s, ${bw.threads} threads): ${result.bandwidthProbes.map((p) => `${fixed(p.readGBs, 1)} / ${fixed(p.copyGBs, 1)}`).join(', ')}.`,
    `- Method: ${bw.method}; buffer ${gib(bw.bufferBytes)}.`,
    `- For reference (quoted from issue 3, not measured here): about ${BANDWIDTH_QUOTED.readGBs} GB/s read and ${BANDWIDTH_QUOTED.copyGBs} GB/s copy on two threads.`,
    ...(bw.threads > 1 && bw.readGBs < 1.3 * bw.readGBsOneThread
      ? [
          `- **Warning**: ${bw.threads} threads read only ${fixed(bw.readGBs / bw.readGBsOneThread, 2)}× what one thread reads: ` +
            'other work held the cores while probing, so this reference is low and the fractions below flatter the kernels.',
        ]
      : []),
    '',
    '## Method',
    '',
    `- ${result.method.description}`,
    '- GB/s counts the bytes a call must move (below); "of bw" divides it by the read bandwidth for kernels that only read ' +
      'big arrays and by the copy bandwidth for kernels that also write one; "vs js" is the js backend\'s median over this one; ' +
      '"cpu share" is the process\'s CPU time over wall time while timing, per thread the backend uses (1 on js): well below 100% ' +
      'means either that other work took the cores ("others": cores that other processes kept busy meanwhile, from /proc/stat) or that the kernel leaves its threads idle.',
    '',
    ...Object.entries(result.bytesCounted).map(([op, bytes]) => `  - \`${op}\`: ${bytes}`),
    '',
    '## Results',
    '',
    ...mdTable(COLUMNS, result.records.map(row), 3),
    '',
    ...(result.skippedBackends.length + result.skipped.length > 0
      ? [
          '### Skipped',
          '',
          ...result.skippedBackends.map((s) => `- backend \`${s.backend}\`: ${s.reason}`),
          ...result.skipped.map((s) => `- \`${s.op}\`${s.shape ? ` ${shapeLabel(s.shape)}` : ''} on \`${s.backend}\`: ${s.reason}`),
          '',
        ]
      : []),
    '## Peak memory of the logprobs forward',
    '',
    ...(result.peakMemory.length === 0
      ? ['Not measured in this run.']
      : mdTable(
          ['backend', 'shape', 'process', 'peak read from', 'inputs', 'outputs', 'peak RSS growth during the call'],
          result.peakMemory.map((p) => [
            p.backend,
            shapeLabel(p.shape),
            p.method,
            p.highWaterMark,
            gib(p.inputBytes),
            gib(p.outputBytes),
            gib(p.peakGrowthBytes),
          ]),
          4,
        )),
    '',
    '## Targets (issue 3)',
    '',
    ...mdTable(
      ['status', 'backend', 'target', 'figure', 'limited by'],
      result.targets.map((t) => [t.status === 'met' ? 'met' : `**${t.status}**`, t.backend, t.target, t.figure, t.limitedBy ?? '']),
    ),
    '',
    '## PyTorch reference (quoted from issue 3, not measured in this run)',
    '',
    'PyTorch 1.13 (Debian), 2 threads, allocator reuse on, on this machine kind:',
    '',
    ...mdTable(
      ['op', 'shape', 'PyTorch ms (quoted)', 'ours ms (this run)', 'speedup'],
      PYTORCH_QUOTED.map((q) => {
        const ours = result.records
          .filter((r) => r.op === q.op && r.backend !== 'js' && r.shape.join() === q.shape.join())
          .sort((a, b) => a.medianMs - b.medianMs)[0];
        return [
          `${q.op} (${q.what})`,
          shapeLabel(q.shape),
          String(q.ms),
          ours ? `${ms(ours.medianMs)} (${ours.backend})` : '—',
          ours ? `${fixed(q.ms / ours.medianMs, 1)}×` : '—',
        ];
      }),
      2,
    ),
    '',
  ].join('\n');
};
