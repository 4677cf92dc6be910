import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { unsafeTensor, type FloatTensor } from '@rlhf/tensor';
import { rankingToPairs, rewardModelTrainer, rng, windowMlpReward, type Forward, type RankingBatch, type RewardModel } from '@rlhf/trainers';
import { L, V, rankingBatch } from './fixtures.js';
import { inFloat32, right } from './helpers.js';

const model = (seed: number) => right(windowMlpReward({ vocabSize: V, window: 1, embedDim: 4, hidden: 8 }, rng(seed)));

/** Wraps a model and counts its forward passes, to prove that validation comes first. */
const counting = (m: RewardModel) => {
  let calls = 0;
  const wrapped: RewardModel = { ...m, scores: (t, k) => (calls++, m.scores(t, k)) };
  return { model: wrapped, calls: () => calls };
};

describe('reward-model trainer', () => {
  it('learns K-way rankings with ties: the loss falls and held-out pair accuracy rises', async () => {
    const r = rng(1);
    const train = rankingBatch(r, 64, 4);
    const heldOut = rankingBatch(r, 64, 4);
    const trainer = right(rewardModelTrainer({ model: model(2), optimizer: { lr: 0.02 } }));
    const first = right(await trainer.evaluate(heldOut)());
    let last = first;
    for (let i = 0; i < 60; i++) last = right(await trainer.step(train)());
    const after = right(await trainer.evaluate(heldOut)());
    expect(last.loss).toBeLessThan(first.loss * 0.6);
    expect(after.accuracy).toBeGreaterThan(0.9);
    expect(after.accuracy).toBeGreaterThan(first.accuracy + 0.2);
    expect(Number.isFinite(last.gradNorm!)).toBe(true);
    expect(after.rewardStd).toBeGreaterThan(0);
  });

  it('trains on pairs with a margin, and centering pulls the rewards towards 0', async () => {
    const pairs = rankingToPairs(rankingBatch(rng(3), 32, 3));
    const B = pairs.chosen.shape[0]!;
    const withMargin = { ...pairs, margin: unsafeTensor('float64', [B], new Float64Array(B).fill(1)) };
    const plain = right(rewardModelTrainer({ model: model(4), optimizer: { lr: 0.02 } }));
    const centered = right(rewardModelTrainer({ model: model(4), optimizer: { lr: 0.02 }, centerCoef: 0.1 }));
    let p, c;
    for (let i = 0; i < 60; i++) {
      p = right(await plain.step(withMargin)());
      c = right(await centered.step(withMargin)());
    }
    expect(p!.accuracy).toBeGreaterThan(0.9);
    expect(Math.abs(c!.rewardMean)).toBeLessThan(Math.abs(p!.rewardMean));
  });

  it('ranking loss with centering: the gradient reaching every parameter matches finite differences', async () => {
    const batch = rankingBatch(rng(5), 4, 3);
    const m = model(6);
    m.parameters.forEach((p) => p.value.forEach((_, i) => (p.value[i] += 0.3 * Math.sin(i + 1)))); // a non-zero output layer
    // The optimiser zeroes the gradients after its step: capture them on the way back.
    const captured = m.parameters.map((p) => new Float64Array(p.value.length));
    const wrapped: RewardModel = {
      ...m,
      scores: (t, k) =>
        E.map((f: Forward<FloatTensor>) => ({
          ...f,
          backward: (g: FloatTensor) => {
            const out = f.backward(g);
            m.parameters.forEach((p, j) => captured[j]!.set(p.grad));
            return out;
          },
        }))(m.scores(t, k)),
    };
    // lr so small that the step leaves every parameter as it was.
    const trainer = right(rewardModelTrainer({ model: wrapped, optimizer: { lr: 1e-300 }, centerCoef: 0.3 }));
    right(await trainer.step(batch)());
    const loss = async () => right(await trainer.evaluate(batch)()).loss;
    const h = 1e-6;
    for (const [j, p] of m.parameters.entries()) {
      expect(captured[j]!.some((g) => g !== 0)).toBe(true);
      for (const i of [0, Math.floor(p.value.length / 2), p.value.length - 1]) {
        const x = p.value[i]!;
        p.value[i] = x + h;
        const up = await loss();
        p.value[i] = x - h;
        const down = await loss();
        p.value[i] = x;
        expect(captured[j]![i]).toBeCloseTo((up - down) / (2 * h), 6);
      }
    }
  });

  it('takes a model whose scores are float32, on rankings and on pairs, with the float64 results', async () => {
    const batch = rankingBatch(rng(8), 4, 3);
    for (const data of [batch, rankingToPairs(batch)]) {
      const m64 = model(7);
      const m32: RewardModel = { ...m64, scores: (t, k) => inFloat32(m64.scores(t, k)) };
      const [a, b] = [m64, m32].map((m) => right(rewardModelTrainer({ model: m, optimizer: { lr: 0.01 } })));
      const [r64, r32] = [right(await a!.evaluate(data)()), right(await b!.evaluate(data)())];
      expect(r32.loss).toBeCloseTo(r64.loss, 5);
      expect(r32.accuracy).toBe(r64.accuracy);
      expect(E.isRight(await b!.step(data)())).toBe(true);
    }
  });

  it('rejects inconsistent batches with an RlhfError before the model runs', async () => {
    const c = counting(model(7));
    const trainer = right(rewardModelTrainer({ model: c.model, optimizer: { lr: 0.01 } }));
    const good = rankingBatch(rng(8), 4, 3);
    const cases: [string, RankingBatch, string][] = [
      ['token outside the vocabulary', { ...good, tokens: unsafeTensor('int32', good.tokens.shape, good.tokens.data.map((x, i) => (i === 7 ? V : x))) }, 'index'],
      ['mask of another length', { ...good, mask: unsafeTensor('uint8', [4, 3, L - 1], new Uint8Array(4 * 3 * (L - 1))) }, 'shape'],
      ['ranks of another K', { ...good, ranks: unsafeTensor('int32', [4, 2], new Int32Array(8)) }, 'shape'],
      ['rank out of range', { ...good, ranks: unsafeTensor('int32', [4, 3], Int32Array.from({ length: 12 }, (_, i) => (i === 0 ? 3 : i % 3))) }, 'index'],
      ['no pair at all (every response tied)', { ...good, ranks: unsafeTensor('int32', [4, 3], new Int32Array(12)) }, 'empty'],
      ['empty batch', { tokens: unsafeTensor('int32', [0, 3, L], new Int32Array(0)), mask: unsafeTensor('uint8', [0, 3, L], new Uint8Array(0)), ranks: unsafeTensor('int32', [0, 3], new Int32Array(0)) }, 'empty'],
      ['a ranked response without response tokens', { ...good, mask: unsafeTensor('uint8', good.mask.shape, new Uint8Array(good.mask.data.length)) }, 'empty'],
    ];
    for (const [what, batch, kind] of cases) {
      const out = await trainer.step(batch)();
      expect(E.isLeft(out), what).toBe(true);
      expect(E.isLeft(out) && out.left.kind, what).toBe(kind);
    }
    const pairs = rankingToPairs(good);
    const badPairs = await trainer.step({ ...pairs, rejected: unsafeTensor('int32', [1, L], new Int32Array(L)) })();
    expect(E.isLeft(badPairs) && badPairs.left.kind).toBe('shape');
    // A pair side without response tokens would score 0 and be trained on.
    const emptySide = pairs.rejectedMask.data.slice();
    emptySide.fill(0, L, 2 * L);
    const emptyPair = await trainer.step({ ...pairs, rejectedMask: unsafeTensor('uint8', pairs.rejectedMask.shape, emptySide as Uint8Array) })();
    expect(E.isLeft(emptyPair) && emptyPair.left.message).toContain('rejectedMask: pair 1 has no response token');
    expect(c.calls()).toBe(0);
    expect(E.isRight(await trainer.step(good)())).toBe(true);
    expect(c.calls()).toBe(1);
  });
});
