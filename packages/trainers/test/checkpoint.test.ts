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
  parseMetricsLine,
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
      expect(E.isLeft(res) && res.left.message, `step ${step}`).toContain("optimizer 'policy' needs a step ≥ 0");
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

  it('a checkpoint that is JSON but corrupt inside is a shape error from load and from restore, never a throw', async () => {
    const a = right(windowMlpPolicy(config, rng(1)));
    const opt = right(adam(a.parameters, { lr: 0.01 }));
    const good = makeCheckpoint({ step: 2, models: { policy: a }, optimizers: { policy: opt }, rng: rng(3) });
    const param = Object.keys(good.models['policy']!)[0]!;
    const corrupt: Record<string, unknown> = {
      'models null': { ...good, models: null },
      'parameter data a number': { ...good, models: { policy: { ...good.models['policy'], [param]: { shape: [1], data: 5 } } } },
      'parameter without shape': { ...good, models: { policy: { ...good.models['policy'], [param]: { data: '' } } } },
      'optimizer without m': { ...good, optimizers: { policy: { step: 1, v: [] } } },
      'optimizers null': { ...good, optimizers: null },
      'generator of strings': { ...good, rng: ['a', 'b', 'c', 'd'] },
      'generator an object': { ...good, rng: { a: 1 } },
      'negative step': { ...good, step: -3 },
    };
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-corrupt-'));
    for (const [what, ckpt] of Object.entries(corrupt)) {
      const path = join(dir, `${what}.json`);
      writeFileSync(path, JSON.stringify(ckpt));
      const loaded = await loadCheckpoint(path)();
      expect(E.isLeft(loaded) && loaded.left.kind, what).toBe('shape');
      const target = right(windowMlpPolicy(config, rng(2)));
      const before = target.parameters.map((p) => p.value.slice());
      const restored = restoreCheckpoint(ckpt as never, { models: { policy: target }, optimizers: { policy: right(adam(target.parameters, { lr: 0.01 })) } });
      expect(E.isLeft(restored) && restored.left.kind, what).toBe('shape');
      target.parameters.forEach((p, i) => expect(p.value, what).toEqual(before[i]));
    }
    // Another generator's state (makeCheckpoint takes any `state()`) is for its own restore to judge.
    const other = makeCheckpoint({ step: 1, models: { policy: a }, rng: { state: () => [1, 2, 3, 4, 5, 6, 7, 8] } });
    expect(right(restoreCheckpoint(other, { models: { policy: right(windowMlpPolicy(config, rng(2))) } })).rng).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // A name that only the prototype has is not a model or a parameter.
    const proto = restoreCheckpoint({ ...good, models: {} }, { models: { toString: a } });
    expect(E.isLeft(proto) && proto.left.message).toContain("no model 'toString'");
  });

  it('metrics are appended as JSON lines, non-finite numbers as the strings parseMetricsLine reads back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    const m = jsonlMetrics(join(dir, 'deep', 'm.jsonl'));
    m.log({ step: 1, loss: 0.5 });
    m.log({ step: 2, loss: 0.25, run: 'kl' });
    m.log({ step: 3, gradNorm: NaN, hi: Infinity, lo: -Infinity, none: null, big: 12n });
    const text = readFileSync(m.path, 'utf8').trim().split('\n');
    expect(text[2]).toBe('{"step":3,"gradNorm":"NaN","hi":"Infinity","lo":"-Infinity","none":null,"big":"12"}');
    expect(text.map(parseMetricsLine)).toEqual([
      { step: 1, loss: 0.5 },
      { step: 2, loss: 0.25, run: 'kl' },
      { step: 3, gradNorm: NaN, hi: Infinity, lo: -Infinity, none: null, big: '12' },
    ]);
  });
});
