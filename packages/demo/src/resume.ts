import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { paramError, type RlhfError } from '@rlhf/tensor';
import { loadCheckpoint, parseMetricsLine, type Checkpoint, type PpoStats, type Trainable } from '@rlhf/trainers';
import type { JobSize } from './job.js';

/** The two PPO runs of the job, in the order they run. */
export const PPO_RUNS = ['kl', 'noKl'] as const;
export type PpoRunName = (typeof PPO_RUNS)[number];

/**
 * DIR/run.json: what a run needs to be continued by `--resume DIR`. Written when the job starts;
 * `prefix` is added once the deterministic part (pretraining, reward model) is done, so that a
 * resumed job can check it recomputed exactly the same models.
 */
export interface RunFile {
  readonly format: 'rlhf-ts/demo-run';
  readonly version: 1;
  readonly seed: number;
  readonly klTarget: number;
  readonly klInit: number;
  readonly klHorizon: number;
  readonly checkpointEvery: number;
  readonly size: JobSize;
  readonly backend: string;
  readonly prefix?: { readonly policySha256: string; readonly rewardModelSha256: string };
}

/** What an interrupted run left behind, checked for consistency: the input of a resumed job. */
export interface ResumedRun {
  readonly dir: string;
  readonly run: RunFile;
  /** The latest checkpoint of each PPO run that saved one. */
  readonly checkpoints: Partial<Record<PpoRunName, Checkpoint>>;
  /** The lines of metrics.jsonl a resumed job keeps: everything up to the checkpoints, nothing after. */
  readonly keptMetrics: readonly string[];
  /** Each PPO run's per-step statistics and hidden utility up to its checkpoint, from metrics.jsonl. */
  readonly past: Record<PpoRunName, { readonly history: PpoStats[]; readonly utility: number[] }>;
}

export const runFilePath = (dir: string) => join(dir, 'run.json');
export const checkpointPath = (dir: string, run: PpoRunName) => join(dir, 'checkpoints', `ppo-${run}.json`);
export const metricsPath = (dir: string) => join(dir, 'metrics.jsonl');

/** Writes run.json atomically, so that a kill never leaves half of it. */
export const writeRunFile = (dir: string, run: RunFile): void => {
  const path = runFilePath(dir);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(run, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
};

/** sha256 of a model's parameters (names, shapes and float64 bytes): equal iff the models are bit-identical. */
export const parameterHash = (model: Trainable): string => {
  const h = createHash('sha256');
  for (const p of model.parameters) {
    h.update(`${p.name}[${p.shape.join(',')}]`);
    h.update(new Uint8Array(p.value.buffer, p.value.byteOffset, p.value.byteLength));
  }
  return h.digest('hex');
};

const isCount = (u: unknown, min: number): u is number => Number.isSafeInteger(u) && (u as number) >= min;
const SIZE_KEYS = ['corpusSize', 'pretrainSteps', 'pretrainBatch', 'rmPrompts', 'rmHeldOut', 'rmK', 'rmEpochs', 'rmBatch', 'ppoSteps', 'ppoBatch', 'ppoMinibatch', 'evalPrompts'] as const;

const checkRunFile = (u: unknown, path: string): E.Either<RlhfError, RunFile> => {
  const r = u as Partial<RunFile> | null;
  const bad = (what: string) => E.left(paramError(`${path}: ${what}`));
  if (typeof r !== 'object' || r === null || r.format !== 'rlhf-ts/demo-run' || r.version !== 1) return bad('not a demo run file (format rlhf-ts/demo-run, version 1)');
  if (!isCount(r.seed, 0) || (r.seed as number) >= 2 ** 32) return bad('seed must be an integer in [0, 2^32)');
  for (const k of ['klTarget', 'klInit', 'klHorizon'] as const) if (!(typeof r[k] === 'number' && r[k] > 0)) return bad(`${k} must be a number > 0`);
  if (!isCount(r.checkpointEvery, 1)) return bad('checkpointEvery must be an integer ≥ 1');
  if (typeof r.size !== 'object' || r.size === null) return bad('size is missing');
  for (const k of SIZE_KEYS) if (!isCount(r.size[k], 1)) return bad(`size.${k} must be an integer ≥ 1`);
  if (typeof r.backend !== 'string') return bad('backend is missing');
  if (r.prefix !== undefined && (typeof r.prefix?.policySha256 !== 'string' || typeof r.prefix.rewardModelSha256 !== 'string')) return bad('prefix must hold policySha256 and rewardModelSha256');
  return E.right(r as RunFile);
};

type Record_ = { readonly phase?: unknown; readonly run?: unknown; readonly step?: unknown; readonly utility?: unknown };

/**
 * Splits metrics.jsonl into what a resumed job keeps. A kill can leave a half-written last line
 * (dropped) and PPO steps logged after the last checkpoint (dropped: the resumed job redoes them).
 */
const keepMetrics = (
  dir: string,
  run: RunFile,
  checkpoints: ResumedRun['checkpoints'],
): E.Either<RlhfError, Pick<ResumedRun, 'keptMetrics' | 'past'>> => {
  const path = metricsPath(dir);
  const past: ResumedRun['past'] = { kl: { history: [], utility: [] }, noKl: { history: [], utility: [] } };
  // Before the prefix finished nothing is kept: the resumed job logs pretraining and the reward model again.
  if (run.prefix === undefined || !existsSync(path)) return E.right({ keptMetrics: [], past });
  const lines = readFileSync(path, 'utf8').split('\n');
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    let record: Record_;
    try {
      record = parseMetricsLine(line) as Record_;
    } catch {
      if (i >= lines.length - 2) continue; // the last line, cut short by the kill
      return E.left(paramError(`${path}: line ${i + 1} is not JSON`));
    }
    if (record.phase !== 'ppo') {
      kept.push(line);
      continue;
    }
    const name = PPO_RUNS.find((r) => r === record.run);
    if (name === undefined) return E.left(paramError(`${path}: line ${i + 1} names an unknown PPO run ${String(record.run)}`));
    if (typeof record.step !== 'number' || record.step > (checkpoints[name]?.step ?? 0)) continue;
    const { phase: _phase, run: _run, utility, ...stats } = record;
    past[name].history.push(stats as unknown as PpoStats);
    past[name].utility.push(utility as number);
    kept.push(line);
  }
  for (const name of PPO_RUNS) {
    const steps = past[name].history.map((s) => s.step);
    const at = checkpoints[name]?.step ?? 0;
    if (steps.length !== at || steps.some((s, k) => s !== k + 1))
      return E.left(paramError(`${path} holds steps [${steps.join(', ')}] of PPO run ${name}, but its checkpoint is at step ${at}: cannot rebuild the run's history`));
  }
  return E.right({ keptMetrics: kept, past });
};

/**
 * Reads and checks an interrupted run's folder: run.json, the PPO checkpoints and metrics.jsonl.
 * Fails with a message naming what is missing or inconsistent; changes nothing on disk.
 */
export const readRun = (dir: string): TE.TaskEither<RlhfError, ResumedRun> => async () => {
  const path = runFilePath(dir);
  if (!existsSync(path)) return E.left(paramError(`${dir} is not a demo run folder: ${path} does not exist`));
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return E.left(paramError(`${path} is not JSON: ${(e as Error).message}`));
  }
  const run = checkRunFile(parsed, path);
  if (E.isLeft(run)) return run;
  const checkpoints: Partial<Record<PpoRunName, Checkpoint>> = {};
  for (const name of PPO_RUNS) {
    const file = checkpointPath(dir, name);
    if (!existsSync(file)) continue;
    const ckpt = await loadCheckpoint(file)();
    if (E.isLeft(ckpt)) return ckpt;
    if (run.right.prefix === undefined) return E.left(paramError(`${file} exists but ${path} records no finished reward model: the folder is inconsistent`));
    if (ckpt.right.step > run.right.size.ppoSteps) return E.left(paramError(`${file} is at step ${ckpt.right.step}, past the run's ${run.right.size.ppoSteps} PPO steps`));
    checkpoints[name] = ckpt.right;
  }
  if (checkpoints.noKl !== undefined && checkpoints.kl?.step !== run.right.size.ppoSteps)
    return E.left(paramError(`${dir} has a checkpoint of the β = 0 run but the adaptive-KL run did not finish: the folder is inconsistent`));
  return E.map((m: Pick<ResumedRun, 'keptMetrics' | 'past'>): ResumedRun => ({ dir, run: run.right, checkpoints, ...m }))(keepMetrics(dir, run.right, checkpoints));
};
