import cliProgress from 'cli-progress';

export interface Progress {
  readonly tick: (payload?: Readonly<Record<string, string | number>>) => void;
  readonly stop: () => void;
}

/**
 * A progress bar for long runs (cli-progress), shown only on an interactive terminal outside
 * tests and CI, so that logs and piped output stay clean.
 */
export const progressBar = (label: string, total: number, enabled = defaultEnabled()): Progress => {
  if (!enabled) return { tick: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label.padEnd(14)} [{bar}] {value}/{total} {info}`, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { info: '' });
  return {
    tick: (payload) =>
      bar.increment(1, {
        info: Object.entries(payload ?? {})
          .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toFixed(3) : v}`)
          .join(' '),
      }),
    stop: () => bar.stop(),
  };
};

const defaultEnabled = (): boolean =>
  process.stdout.isTTY === true && !process.env['VITEST'] && !process.env['CI'] && !process.env['NO_PROGRESS'];
