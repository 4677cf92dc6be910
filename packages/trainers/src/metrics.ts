import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Metrics as JSON Lines: one object per line, appended as soon as it is logged, so that a run
 * stopped half-way keeps every record it wrote. A non-finite number (a skipped step's gradient norm)
 * is written as the string "NaN", "Infinity" or "-Infinity", as the conformance cases write them, and
 * read back by `parseMetricsLine`; a bigint as its decimal string. File-system errors throw, as
 * node:fs does (a log that cannot be written must not be dropped in silence).
 */
export interface MetricsLog {
  readonly path: string;
  readonly log: (record: Readonly<Record<string, unknown>>) => void;
}

const NON_FINITE: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

const replacer = (_key: string, v: unknown): unknown =>
  typeof v === 'number' && !Number.isFinite(v) ? String(v) : typeof v === 'bigint' ? v.toString() : v;

/** One metrics line as a JSON text (no newline). */
export const formatMetricsLine = (record: Readonly<Record<string, unknown>>): string => JSON.stringify(record, replacer);

/**
 * A line written by `jsonlMetrics`, with its non-finite numbers back (throws on text that is not JSON).
 * A string value "NaN", "Infinity" or "-Infinity" comes back as that number too.
 */
export const parseMetricsLine = (line: string): unknown =>
  JSON.parse(line, (_key, v: unknown) => (typeof v === 'string' && Object.hasOwn(NON_FINITE, v) ? NON_FINITE[v] : v));

export const jsonlMetrics = (path: string): MetricsLog => {
  mkdirSync(dirname(path), { recursive: true });
  return { path, log: (record) => appendFileSync(path, `${formatMetricsLine(record)}\n`) };
};

/** Mean and (population) standard deviation of the selected values. */
export const meanStd = (xs: ArrayLike<number>, keep: (i: number) => boolean = () => true): { mean: number; std: number } => {
  let n = 0;
  let s = 0;
  for (let i = 0; i < xs.length; i++) if (keep(i)) (s += xs[i]!), n++;
  if (n === 0) return { mean: 0, std: 0 };
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < xs.length; i++) if (keep(i)) v += (xs[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(v / n) };
};
