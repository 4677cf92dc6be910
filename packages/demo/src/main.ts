#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as E from 'fp-ts/lib/Either.js';
import { backendStatus, defaultBackend } from '@rlhf/kernels';
import { toRlhfError, type RlhfError } from '@rlhf/tensor';
import { stopProgressBars } from '@rlhf/trainers';
import { resumeOptions, runJob, SIZES, type JobOptions, type Report } from './job.js';
import { readRun } from './resume.js';

const usage = `usage: pnpm demo [--seed N] [--out DIR] [--quick] [--kl-target NATS]
       pnpm demo --resume DIR

Learns a reward model from a simulated annotator's rankings, then optimises a policy against it
with PPO, once with the adaptive KL controller and once with β = 0. Writes run.json (the run's
options), checkpoints/, metrics.jsonl, report.json and plot.svg into DIR (default runs/<timestamp>/).

--resume DIR continues an interrupted run in DIR with the options in DIR/run.json: it recomputes
pretraining and the reward model (checked bit for bit against the run), restores each PPO run from
its latest checkpoint, appends to metrics.jsonl and writes the same report as an uninterrupted run.`;

type Args = { help: true } | { help: false; resume: string } | { help: false; resume?: undefined; seed: number; klTarget: number; quick: boolean; out: string };

const parse = (): Args => {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      out: { type: 'string' },
      quick: { type: 'boolean' },
      'kl-target': { type: 'string' },
      resume: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true };
  if (values.resume !== undefined) {
    const given = (['seed', 'out', 'quick', 'kl-target'] as const).filter((k) => values[k] !== undefined);
    if (given.length > 0) throw new Error(`--resume takes the run's options from DIR/run.json; drop ${given.map((k) => `--${k}`).join(', ')}`);
    return { help: false, resume: values.resume };
  }
  const seed = Number(values.seed ?? '1');
  const klTarget = Number(values['kl-target'] ?? '2');
  // The generator takes 32 bits: a larger seed would silently be another seed's run.
  if (!/^\d+$/.test(values.seed ?? '1') || seed >= 2 ** 32) throw new Error(`--seed must be an integer in [0, 2^32), got ${values.seed}`);
  if (!(Number.isFinite(klTarget) && klTarget > 0)) throw new Error(`--kl-target must be a finite number > 0, got ${values['kl-target']}`);
  if (values.out === '') throw new Error('--out must name a folder');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = values.out ?? join('runs', stamp);
  // A fresh run would append to the old metrics beside a new run.json: the folder would resume neither.
  if (existsSync(join(out, 'run.json'))) throw new Error(`${out} already holds a run: continue it with --resume ${out}, or choose another --out`);
  if (existsSync(join(out, 'metrics.jsonl'))) throw new Error(`${out} already holds a metrics.jsonl: choose another --out`);
  return { help: false, seed, klTarget, quick: values.quick ?? false, out };
};

/** Loads the native kernels when they were built; the js backend runs otherwise. Returns why not, if not. */
const loadNative = async (): Promise<string | undefined> => {
  const name = '@rlhf/native';
  try {
    await import(name);
    return undefined;
  } catch (e) {
    return `@rlhf/native did not load: ${(e as Error).message.split('\n')[0]}`;
  }
};

const fmt = (x: number, d = 2) => (x >= 0 ? ' ' : '') + x.toFixed(d);

const summary = (r: Report, out: string): string =>
  [
    '',
    `backend ${r.backend} · seed ${r.seed} · ${r.wallSeconds.toFixed(1)} s · output in ${out}/`,
    `pretrained policy: ${r.pretrain.parameters} parameters, loss ${r.pretrain.finalLoss.toFixed(3)} nats/token (the chain's own entropy: ${r.pretrain.chainEntropy.toFixed(3)})`,
    `reward model: held-out pair accuracy ${r.rewardModel.heldOutAccuracy.toFixed(3)} on ${r.rewardModel.heldOutPairs} pairs, correlation with the hidden utility ${r.rewardModel.utilityCorrelation.toFixed(3)}`,
    '',
    '                      hidden utility       RM score       KL (nats)    β after',
    `  pretrained          ${fmt(r.kl.utilityBefore)}              ${fmt(r.kl.rmScoreBefore)}          ${fmt(0)}`,
    `  PPO, adaptive KL    ${fmt(r.kl.utilityAfter)} (${fmt(r.kl.utilityGain)})     ${fmt(r.kl.rmScoreAfter)}          ${fmt(r.kl.klAfter)}        ${r.kl.betaAfter.toFixed(3)}  (target ${r.klTarget})`,
    `  PPO, β = 0          ${fmt(r.noKl.utilityAfter)} (${fmt(r.noKl.utilityGain)})     ${fmt(r.noKl.rmScoreAfter)}          ${fmt(r.noKl.klAfter)}        0`,
    '',
    ...r.findings.map((f) => `• ${f}`),
    '',
  ].join('\n');

const main = async (): Promise<number> => {
  let args: Args;
  try {
    args = parse();
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  if (args.help) {
    console.log(usage);
    return 0;
  }
  const log = (line: string) => console.log(line);
  let options: JobOptions;
  if (args.resume !== undefined) {
    const resumed = await readRun(args.resume)();
    if (E.isLeft(resumed)) {
      console.error(`cannot resume: ${resumed.left.message}`);
      return 2;
    }
    options = resumeOptions(resumed.right, { log });
  } else options = { seed: args.seed, outDir: args.out, size: args.quick ? SIZES.quick : SIZES.full, klTarget: args.klTarget, log };
  const loadError = await loadNative();
  const native = backendStatus().find((b) => b.name === 'cpu');
  console.log(
    `kernels: ${defaultBackend().name}${native && !native.available ? ` (native cpu unavailable: ${loadError ?? native.reason})` : ''}`,
  );
  let result: E.Either<RlhfError, Report>;
  try {
    result = await runJob(options)();
  } catch (e) {
    result = E.left(toRlhfError(e)); // a file the job could not write, say
  } finally {
    stopProgressBars();  // a run that failed midway leaves no bar holding the process (or the cursor hidden)
  }
  if (E.isLeft(result)) {
    console.error(`demo failed: ${result.left.message}`);
    return 1;
  }
  console.log(summary(result.right, options.outDir));
  return 0;
};

process.exitCode = await main();
