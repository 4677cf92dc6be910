import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatAb, runAb } from './ab.js';
import { formatTable, toJson, toMarkdown } from './report.js';
import { BENCHES, matchesFilter, runSuite, type SuiteOptions, type SuiteResult } from './suite.js';

const USAGE = `usage: pnpm bench [filter…] [options]

  filter…            run only ops whose name contains one of these (e.g. logprobs, klFull, ranking)
  --backend a,b      backends to run (default: every available one; js is needed for "vs js")
  --reps N           minimum repetitions on native backends (default 15)
  --js-reps N        repetitions on the js backend (default 3: seconds per call at the big sizes)
  --threads N        threads for the native kernels and the bandwidth probe (default: native default)
  --quick            tiny sizes, to check that everything runs (writes nothing unless --out is given)
  --no-memory        skip the peak-memory probe of the logprobs forward
  --out DIR          where latest.json and latest.md go (default bench/results, for a full run only:
                     a filtered, single-backend or quick run writes nothing without --out)
  --list             list the benchmarks and exit
  --ab A,B           time two benchmarks (exact op names) interleaved on one backend (--backend, default
                     cpu), medians of --pairs N pairs (default 31): for a comparison that the drift of a
                     shared machine between two cases could fake; writes nothing

ops: ${BENCHES.map((b) => b.op).join(', ')}`;

const positiveInt = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} expects a positive integer, got '${value}'`);
  return n;
};

export interface CliOptions extends SuiteOptions {
  /** Where to write latest.json and latest.md; absent, nothing is written. */
  readonly outDir?: string;
  /** `--ab`: the two benchmarks to time interleaved instead of running the suite. */
  readonly ab?: readonly [string, string];
  readonly pairs: number;
}

export const parseCli = (argv: readonly string[]): CliOptions | 'help' | 'list' => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      backend: { type: 'string' },
      reps: { type: 'string' },
      'js-reps': { type: 'string' },
      threads: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-memory': { type: 'boolean', default: false },
      out: { type: 'string' },
      list: { type: 'boolean', default: false },
      ab: { type: 'string' },
      pairs: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  if (values.list) return 'list';
  const defaultOut = fileURLToPath(new URL('../results/', import.meta.url));
  const ab = values.ab?.split(',').map((op) => op.trim());
  if (ab !== undefined && (ab.length !== 2 || ab.some((op) => !BENCHES.some((b) => b.op === op))))
    throw new Error(`--ab expects two op names separated by a comma, got '${values.ab}'; ops: ${BENCHES.map((b) => b.op).join(', ')}`);
  return {
    ...(ab ? { ab: [ab[0]!, ab[1]!] as const } : {}),
    pairs: positiveInt('pairs', values.pairs, 31),
    filters: positionals,
    ...(values.backend ? { backends: values.backend.split(',').map((b) => b.trim()).filter(Boolean) } : {}),
    reps: positiveInt('reps', values.reps, 15),
    jsReps: positiveInt('js-reps', values['js-reps'], 3),
    ...(values.threads ? { threads: positiveInt('threads', values.threads, 1) } : {}),
    quick: values.quick,
    memory: !values['no-memory'],
    // Only a full run replaces the committed results: a quick, filtered or single-backend one writes
    // nothing unless --out names a folder.
    ...(values.out
      ? { outDir: values.out }
      : values.quick || positionals.length > 0 || values.backend
        ? {}
        : { outDir: defaultOut }),
  };
};

/** Writes latest.json and latest.md (through temporary files, so a crash leaves the old ones whole). */
export const writeResults = (result: SuiteResult, outDir: string): { json: string; markdown: string } => {
  mkdirSync(outDir, { recursive: true });
  const json = `${outDir.replace(/\/$/, '')}/latest.json`;
  const markdown = `${outDir.replace(/\/$/, '')}/latest.md`;
  writeFileSync(`${json}.tmp`, toJson(result));
  writeFileSync(`${markdown}.tmp`, toMarkdown(result));
  renameSync(`${json}.tmp`, json);
  renameSync(`${markdown}.tmp`, markdown);
  return { json, markdown };
};

const main = async (): Promise<void> => {
  const options = parseCli(process.argv.slice(2));
  if (options === 'help') return void console.log(USAGE);
  if (options === 'list') return void console.log(BENCHES.map((b) => `${b.op}: ${b.bytesCounted}`).join('\n'));
  if (options.ab) {
    const [a, b] = options.ab.map((op) => BENCHES.find((bench) => bench.op === op)!);
    const backend = options.backends?.[0];
    const result = await runAb(a!, b!, { ...options, ...(backend ? { backend } : {}), log: (line) => console.error(line) });
    return void console.log(formatAb(result));
  }
  const unmatched = options.filters.filter((f) => !BENCHES.some(matchesFilter(f)));
  if (unmatched.length > 0) throw new Error(`no benchmark matches ${unmatched.join(', ')}; ops: ${BENCHES.map((b) => b.op).join(', ')}`);
  const result = await runSuite({ ...options, log: (line) => console.error(line) });
  console.log(formatTable(result));
  if (options.outDir) {
    const written = writeResults(result, options.outDir);
    console.log(`\nwrote ${written.json} and ${written.markdown}`);
  }
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  });
}
