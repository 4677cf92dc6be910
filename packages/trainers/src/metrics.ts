import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Metrics as JSON Lines: one object per line, appended as soon as it is logged, so that a run
 * stopped half-way keeps every record it wrote.
 */
export interface MetricsLog {
  readonly path: string;
  readonly log: (record: Readonly<Record<string, unknown>>) => void;
}

export const jsonlMetrics = (path: string): MetricsLog => {
  mkdirSync(dirname(path), { recursive: true });
  return { path, log: (record) => appendFileSync(path, `${JSON.stringify(record)}\n`) };
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
