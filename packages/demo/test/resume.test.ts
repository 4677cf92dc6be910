import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { readRun, resumeOptions, runJob, SIZES, type JobOptions, type Report, type ResumedRun } from '@rlhf/demo';

// Quick sizes, but enough PPO steps for checkpoints in the middle of each run.
const SIZE = { ...SIZES.quick, ppoSteps: 6 };
const SEED = 7;
const fresh = (dir: string, extra: Partial<JobOptions> = {}): JobOptions => ({ seed: SEED, outDir: dir, size: SIZE, klTarget: 1, checkpointEvery: 2, ...extra });

const tmp = () => mkdtempSync(join(tmpdir(), 'demo-resume-'));
const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');
const withoutTime = (r: unknown) => ({ ...(r as Report), wallSeconds: 0 });
const ppoSteps = (dir: string, run: string) =>
  read(dir, 'metrics.jsonl').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.phase === 'ppo' && r.run === run).map((r) => r.step as number);

const ok = async <A>(task: () => Promise<E.Either<Error, A>>): Promise<A> => {
  const out = await task();
  if (E.isLeft(out)) throw new Error(out.left.message);
  return out.right;
};
const resumed = async (dir: string): Promise<ResumedRun> => ok(readRun(dir));

describe('runJob resumed from an interrupted run', () => {
  it('reaches the report and metrics of the uninterrupted run, whether killed mid-way, twice, or after finishing', async () => {
    const whole = tmp();
    const expected = await ok(runJob(fresh(whole)));

    const dir = tmp();
    // Killed after KL step 5: step 5 is logged, its last checkpoint is step 4.
    const first = await runJob(fresh(dir, { stopAfterSteps: 5 }))();
    expect(E.isLeft(first) && first.left.message).toMatch(/interrupted after 5 PPO steps/);
    expect(ppoSteps(dir, 'kl')).toEqual([1, 2, 3, 4, 5]);
    const run1 = await resumed(dir);
    expect(run1.checkpoints.kl?.step).toBe(4);
    expect(run1.checkpoints.noKl).toBeUndefined();
    expect(run1.past.kl.history.map((s) => s.step)).toEqual([1, 2, 3, 4]);

    // Resumed and killed again after 4 more steps: KL 5, 6 (finished), β = 0 steps 1, 2 (no checkpoint yet).
    const second = await runJob(resumeOptions(run1, { stopAfterSteps: 4 }))();
    expect(E.isLeft(second)).toBe(true);
    expect(ppoSteps(dir, 'noKl')).toEqual([1, 2]);
    const run2 = await resumed(dir);
    expect(run2.checkpoints.kl?.step).toBe(6);
    expect(run2.checkpoints.noKl).toBeUndefined();
    expect(run2.past.noKl.history).toEqual([]);

    const report = await ok(runJob(resumeOptions(run2)));
    expect(withoutTime(report)).toEqual(withoutTime(expected));
    expect(withoutTime(JSON.parse(read(dir, 'report.json')))).toEqual(withoutTime(JSON.parse(read(whole, 'report.json'))));
    expect(read(dir, 'plot.svg')).toBe(read(whole, 'plot.svg'));
    // Every record exactly once, in the uninterrupted run's order and bytes.
    expect(read(dir, 'metrics.jsonl')).toBe(read(whole, 'metrics.jsonl'));
    expect(ppoSteps(dir, 'kl')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ppoSteps(dir, 'noKl')).toEqual([1, 2, 3, 4, 5, 6]);

    // A finished run resumes to the same report and leaves the metrics as they are.
    const again = await ok(runJob(resumeOptions(await resumed(dir))));
    expect(withoutTime(again)).toEqual(withoutTime(expected));
    expect(read(dir, 'metrics.jsonl')).toBe(read(whole, 'metrics.jsonl'));
  });

  it('resumes a run killed during pretraining (before run.json records the models) from the start', async () => {
    const whole = tmp();
    const expected = await ok(runJob(fresh(whole, { checkpointEvery: 20 })));
    // What a kill during pretraining leaves: run.json without `prefix`, a pretraining log cut mid-line.
    const { prefix: _prefix, ...run } = JSON.parse(read(whole, 'run.json'));
    const bare = tmp();
    writeFileSync(join(bare, 'run.json'), JSON.stringify(run));
    writeFileSync(join(bare, 'metrics.jsonl'), read(whole, 'metrics.jsonl').split('\n').slice(0, 3).join('\n') + '\n{"phase":"pre');
    const report = await ok(runJob(resumeOptions(await resumed(bare))));
    expect(withoutTime(report)).toEqual(withoutTime(expected));
    expect(read(bare, 'metrics.jsonl')).toBe(read(whole, 'metrics.jsonl'));
    // Checkpoints next to such a run.json cannot belong to it.
    writeFileSync(join(whole, 'run.json'), JSON.stringify(run));
    await expect(resumed(whole)).rejects.toThrow(/exists but .*run\.json records no finished reward model: the folder is inconsistent/);
  });

  it('refuses folders it cannot resume, with a message naming the problem', async () => {
    await expect(resumed(tmp())).rejects.toThrow(/not a demo run folder: .*run\.json does not exist/);
    const notJson = tmp();
    writeFileSync(join(notJson, 'run.json'), '{');
    await expect(resumed(notJson)).rejects.toThrow(/run\.json is not JSON/);
    const badSize = tmp();
    writeFileSync(join(badSize, 'run.json'), JSON.stringify({ format: 'rlhf-ts/demo-run', version: 1, seed: 1, klTarget: 1, klInit: 1, klHorizon: 1, checkpointEvery: 2, size: { ...SIZE, ppoSteps: 0 }, backend: 'js' }));
    await expect(resumed(badSize)).rejects.toThrow(/size\.ppoSteps must be an integer ≥ 1/);

    const dir = tmp();
    expect(E.isLeft(await runJob(fresh(dir, { stopAfterSteps: 3 }))())).toBe(true);
    const metrics = read(dir, 'metrics.jsonl');
    // A log that lost a step the checkpoint covers cannot rebuild the history.
    writeFileSync(join(dir, 'metrics.jsonl'), metrics.split('\n').filter((l) => !l.includes('"run":"kl","step":1,')).join('\n'));
    await expect(resumed(dir)).rejects.toThrow(/holds steps \[2\] of PPO run kl, but its checkpoint is at step 2/);
    writeFileSync(join(dir, 'metrics.jsonl'), metrics);
    // Models that do not recompute bit for bit (here: another recorded hash) are refused before any PPO step.
    const run = JSON.parse(read(dir, 'run.json'));
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...run, prefix: { ...run.prefix, rewardModelSha256: '0'.repeat(64) } }));
    const out = await runJob(resumeOptions(await resumed(dir)))();
    expect(E.isLeft(out) && out.left.message).toMatch(/the recomputed reward model differs from the interrupted run's/);
    expect(ppoSteps(dir, 'kl')).toEqual([1, 2]);
  });
});
