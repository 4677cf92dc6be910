import cliProgress from 'cli-progress';

export interface Progress {
  readonly tick: (payload?: Readonly<Record<string, string | number>>) => void;
  readonly stop: () => void;
}

/** The bars started and not yet stopped: a running bar's redraw timer keeps the process alive. */
const running = new Set<Progress>();

/**
 * A progress bar for long runs (cli-progress), shown only on an interactive terminal outside
 * tests and CI, so that logs and piped output stay clean. A run that ends on an error path calls
 * `stopProgressBars` (the demo does, whatever the outcome), so no bar is left holding the process.
 */
export const progressBar = (label: string, total: number, enabled = defaultEnabled()): Progress => {
  if (!enabled) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label.padEnd(14)} [{bar}] {value}/{total} {info}`, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { info: '' });
  const progress: Progress = {
    tick: (payload) =>
      bar.increment(1, {
        info: Object.entries(payload ?? {})
          .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(3) : v}`)
          .join(' '),
      }),
    stop: () => {
      running.delete(progress);
      bar.stop();
    },
  };
  running.add(progress);
  return progress;
};

/** Stops every bar still running (and shows the cursor again). */
export const stopProgressBars = (): void => running.forEach((p) => p.stop());

const defaultEnabled = (): boolean =>
  process.stdout.isTTY === true && !process.env['VITEST'] && !process.env['CI'] && !process.env['NO_PROGRESS'];
