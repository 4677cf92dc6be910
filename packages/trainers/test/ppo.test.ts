import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { unsafeTensor, type IntTensor, type MaskTensor } from '@rlhf/tensor';
import {
  copyParameters,
  loadCheckpoint,
  ppoTrainer,
  rng,
  trainPpo,
  windowMlpPolicy,
  windowMlpValue,
  type KlControl,
  type PpoConfig,
  type RewardModel,
  type Rng,
} from '@rlhf/trainers';
import { left, right } from './helpers.js';

const V = 4;
const policyConfig = { vocabSize: V, window: 2, embedDim: 4, hidden: 12 };

/** A fixed reward: the number of 1s in the response (no parameters). */
const countOnes: RewardModel = {
  vocabSize: V,
  parameters: [],
  scores: (tokens: IntTensor, mask: MaskTensor) => {
    const [B, L] = tokens.shape as [number, number];
    const s = new Float64Array(B);
    for (let i = 0; i < B * L; i++) if (mask.data[i] !== 0 && tokens.data[i] === 1) s[Math.floor(i / L)]! += 1;
    return E.right({ output: unsafeTensor('float64', [B], s), backward: () => E.right(undefined) });
  },
};

const prompts = (r: Rng, n: number): IntTensor => unsafeTensor('int32', [n, 1], Int32Array.from({ length: n }, () => r.int(V)));

const setup = (kl: KlControl, overrides: Partial<PpoConfig> = {}) => {
  const reference = right(windowMlpPolicy(policyConfig, rng(1)));
  const policy = right(windowMlpPolicy(policyConfig, rng(2)));
  right(copyParameters(reference, policy));
  const value = right(windowMlpValue(policyConfig, rng(3)));
  const config: PpoConfig = {
    policy,
    reference,
    value,
    rewardModel: countOnes,
    prompts,
    responseLength: 4,
    batchSize: 32,
    minibatchSize: 16,
    epochs: 2,
    policyOptimizer: { lr: 0.02, maxGradNorm: 1 },
    valueOptimizer: { lr: 0.02 },
    kl,
    seed: 7,
    ...overrides,
  };
  return { policy, value, reference, config, trainer: right(ppoTrainer(config)) };
};

describe('PPO trainer', () => {
  it('raises the reward on a tiny problem, with finite per-step statistics', async () => {
    const { trainer } = setup({ kind: 'fixed', beta: 0 });
    const stats = right(await trainPpo(trainer, { steps: 25 })());
    expect(stats).toHaveLength(25);
    const early = (stats[0]!.meanScore + stats[1]!.meanScore) / 2;
    const late = (stats[23]!.meanScore + stats[24]!.meanScore) / 2;
    expect(late).toBeGreaterThan(early + 1);
    for (const s of stats)
      for (const [k, v] of Object.entries(s)) expect(Number.isFinite(v), `${k} = ${v}`).toBe(true);
    expect(stats.some((s) => s.clipFrac > 0)).toBe(true);
    expect(stats.at(-1)!.kl).toBeGreaterThan(0);
  });

  it('the KL penalty keeps the policy closer to the reference, and the adaptive β moves towards the target', async () => {
    const free = setup({ kind: 'fixed', beta: 0 });
    const penalised = setup({ kind: 'fixed', beta: 2 });
    const freeStats = right(await trainPpo(free.trainer, { steps: 15 })());
    const penStats = right(await trainPpo(penalised.trainer, { steps: 15 })());
    expect(penStats.at(-1)!.kl).toBeLessThan(freeStats.at(-1)!.kl);
    expect(penStats.every((s) => s.beta === 2)).toBe(true);

    const adaptive = setup({ kind: 'adaptive', initKlCoef: 0.1, target: 0.01, horizon: 100 });
    const adStats = right(await trainPpo(adaptive.trainer, { steps: 6 })());
    // The KL exceeds the tiny target, so β grows by at most 1 + 0.2·32/100 per step.
    for (let i = 1; i < adStats.length; i++) {
      if (adStats[i - 1]!.kl > 0.012) expect(adStats[i]!.beta).toBeGreaterThan(adStats[i - 1]!.beta);
      expect(adStats[i]!.beta).toBeLessThanOrEqual(adStats[i - 1]!.beta * (1 + (0.2 * 32) / 100) + 1e-12);
    }
  });

  it('resumes from a checkpoint file exactly where it stopped', async () => {
    const kl: KlControl = { kind: 'adaptive', initKlCoef: 0.2, target: 0.5, horizon: 200 };
    const straight = setup(kl);
    const all = right(await trainPpo(straight.trainer, { steps: 4 })());

    const dir = mkdtempSync(join(tmpdir(), 'ppo-ckpt-'));
    const path = join(dir, 'ckpt.json');
    const first = setup(kl);
    right(await trainPpo(first.trainer, { steps: 2, checkpointPath: path, checkpointEvery: 1 })());

    // A fresh process would build fresh models: different initial weights, same architecture.
    const second = setup(kl, { seed: 999 });
    second.value.parameters.forEach((p) => p.value.fill(0.5));
    right(second.trainer.restore(right(await loadCheckpoint(path)())));
    expect(second.trainer.stepCount()).toBe(2);
    const rest = right(await trainPpo(second.trainer, { steps: 4 })());
    expect(rest.map((s) => s.step)).toEqual([3, 4]);
    expect(rest).toEqual(all.slice(2));
    straight.policy.parameters.forEach((p, i) => expect(Array.from(second.policy.parameters[i]!.value)).toEqual(Array.from(p.value)));
    straight.value.parameters.forEach((p, i) => expect(Array.from(second.value.parameters[i]!.value)).toEqual(Array.from(p.value)));
    expect(second.trainer.beta()).toBe(straight.trainer.beta());
  });

  it('a checkpoint without trainer state, or of another architecture, is rejected and changes nothing', async () => {
    const { trainer, policy } = setup({ kind: 'fixed', beta: 0.1 });
    const ckpt = trainer.checkpoint();
    const before = Array.from(policy.parameters[0]!.value);
    expect(left(trainer.restore({ ...ckpt, extra: null })).kind).toBe('param');
    const other = right(windowMlpPolicy({ ...policyConfig, hidden: 5 }, rng(1)));
    const bigger = { ...ckpt, models: { ...ckpt.models, policy: trainer.checkpoint().models['policy']! } };
    bigger.models.policy = Object.fromEntries(other.parameters.map((p) => [p.name, { shape: [...p.shape], data: '' }]));
    expect(left(trainer.restore(bigger)).kind).toBe('shape');
    // A generator state that is not four uint32 words, a negative step, another KL controller.
    for (const bad of [{ ...ckpt, rng: [1, 2] }, { ...ckpt, rng: ['1', '2', '3', '4'] }, { ...ckpt, rng: { a: 1 } }, { ...ckpt, step: -3 }])
      expect(left(trainer.restore(bad as never)).kind).toBe('shape');
    const adaptive = setup({ kind: 'adaptive', initKlCoef: 0.2, target: 0.5, horizon: 200 }).trainer.checkpoint();
    expect(left(trainer.restore(adaptive)).message).toContain('adaptive KL controller');
    expect(Array.from(policy.parameters[0]!.value)).toEqual(before);
    expect(trainer.stepCount()).toBe(0);
    expect(trainer.beta()).toBe(0.1);
    const missing = await loadCheckpoint(join(tmpdir(), 'no-such-checkpoint.json'))();
    expect(E.isLeft(missing) && missing.left.kind).toBe('param');
  });

  it('rejects bad configuration and bad prompts with an RlhfError before computing', async () => {
    expect(left(ppoTrainer({ ...setup({ kind: 'fixed', beta: 0 }).config, minibatchSize: 64 })).kind).toBe('param');
    expect(left(ppoTrainer({ ...setup({ kind: 'fixed', beta: 0 }).config, rewardModel: { ...countOnes, vocabSize: 5 } })).kind).toBe('param');
    expect(left(ppoTrainer({ ...setup({ kind: 'fixed', beta: 0 }).config, kl: { kind: 'adaptive', initKlCoef: 0.1, target: -1, horizon: 10 } })).kind).toBe('param');
    let scored = 0;
    const counting: RewardModel = { ...countOnes, scores: (t, m) => (scored++, countOnes.scores(t, m)) };
    const outside = setup({ kind: 'fixed', beta: 0 }, { rewardModel: counting, prompts: (_r, n) => unsafeTensor('int32', [n, 1], new Int32Array(n).fill(V)) });
    const out = await outside.trainer.step()();
    expect(E.isLeft(out) && out.left.kind).toBe('index');
    expect(E.isLeft(out) && out.left.message).toContain('prompts');
    const empty = setup({ kind: 'fixed', beta: 0 }, { rewardModel: counting, prompts: (_r, n) => unsafeTensor('int32', [n, 0], new Int32Array(0)) });
    expect(E.isLeft(await empty.trainer.step()())).toBe(true);
    expect(scored).toBe(0);
    expect(outside.trainer.stepCount()).toBe(0);
  });
});
