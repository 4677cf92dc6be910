import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import {
  adam,
  jsonlMetrics,
  loadCheckpoint,
  makeCheckpoint,
  restoreCheckpoint,
  rng,
  saveCheckpoint,
  windowMlpPolicy,
} from '@rlhf/trainers';
import { right } from './helpers.js';

const config = { vocabSize: 6, window: 2, embedDim: 3, hidden: 5 };

describe('checkpoints', () => {
  it('round-trip models, optimiser moments, generator state and extra data bit for bit through a file', async () => {
    const a = right(windowMlpPolicy(config, rng(1)));
    const optA = right(adam(a.parameters, { lr: 0.01 }));
    a.parameters.forEach((p) => p.grad.fill(0.3));
    optA.step();
    const gen = rng(42);
    gen.next();
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    const path = join(dir, 'sub', 'model.json');
    right(await saveCheckpoint(path, makeCheckpoint({ step: 17, models: { policy: a }, optimizers: { policy: optA }, rng: gen, extra: { beta: 0.25 } }))());

    const b = right(windowMlpPolicy(config, rng(2)));
    const optB = right(adam(b.parameters, { lr: 0.01 }));
    const restored = right(restoreCheckpoint(right(await loadCheckpoint(path)()), { models: { policy: b }, optimizers: { policy: optB } }));
    expect(restored.step).toBe(17);
    expect(restored.extra).toEqual({ beta: 0.25 });
    expect(rng(restored.rng!).next()).toBe(gen.next());
    a.parameters.forEach((p, i) => expect(b.parameters[i]!.value).toEqual(p.value));
    expect(optB.state()).toEqual(optA.state());
    // The same next step from both.
    [a, b].forEach((m) => m.parameters.forEach((p) => p.grad.fill(-0.1)));
    optA.step();
    optB.step();
    a.parameters.forEach((p, i) => expect(b.parameters[i]!.value).toEqual(p.value));
  });

  it('refuses a checkpoint of another architecture or a file that is not one, and writes nothing', async () => {
    const a = right(windowMlpPolicy(config, rng(1)));
    const other = right(windowMlpPolicy({ ...config, hidden: 6 }, rng(1)));
    const before = other.parameters.map((p) => p.value.slice());
    const mismatch = restoreCheckpoint(makeCheckpoint({ step: 0, models: { policy: a } }), { models: { policy: other } });
    expect(E.isLeft(mismatch) && mismatch.left.kind).toBe('shape');
    other.parameters.forEach((p, i) => expect(p.value).toEqual(before[i]));
    const missing = restoreCheckpoint(makeCheckpoint({ step: 0, models: { policy: a } }), { models: { value: a } });
    expect(E.isLeft(missing) && missing.left.message).toContain("no model 'value'");

    // An optimiser step that Adam refuses (a corrupted file): refused before the model is written.
    const optA = right(adam(a.parameters, { lr: 0.01 }));
    const ckpt = makeCheckpoint({ step: 3, models: { policy: a }, optimizers: { policy: optA } });
    const target = right(windowMlpPolicy(config, rng(2)));
    const targetBefore = target.parameters.map((p) => p.value.slice());
    for (const step of [-1, 1.5]) {
      const corrupt = { ...ckpt, optimizers: { policy: { ...ckpt.optimizers['policy']!, step } } };
      const res = restoreCheckpoint(corrupt, { models: { policy: target }, optimizers: { policy: right(adam(target.parameters, { lr: 0.01 })) } });
      expect(E.isLeft(res) && res.left.message, `step ${step}`).toContain('bad step');
      target.parameters.forEach((p, i) => expect(p.value).toEqual(targetBefore[i]));
    }

    const dir = mkdtempSync(join(tmpdir(), 'ckpt-bad-'));
    writeFileSync(join(dir, 'x.json'), '{"format": "something else"}');
    writeFileSync(join(dir, 'y.json'), 'not json');
    for (const f of ['x.json', 'y.json']) {
      const out = await loadCheckpoint(join(dir, f))();
      expect(E.isLeft(out) && out.left.kind).toBe('shape');
    }
  });

  it('metrics are appended as JSON lines', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    const m = jsonlMetrics(join(dir, 'deep', 'm.jsonl'));
    m.log({ step: 1, loss: 0.5 });
    m.log({ step: 2, loss: 0.25, run: 'kl' });
    const lines = readFileSync(m.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ step: 1, loss: 0.5 }, { step: 2, loss: 0.25, run: 'kl' }]);
  });
});
