import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { unsafeTensor } from '@rlhf/tensor';
import { copyParameters, dpoTrainer, rankingToPairs, rng, sumRows, tokenLogprobs, windowMlpPolicy } from '@rlhf/trainers';
import { js } from '@rlhf/kernels';
import { V, rankingBatch } from './fixtures.js';
import { inFloat32, right } from './helpers.js';

const config = { vocabSize: V, window: 2, embedDim: 4, hidden: 8 };

describe('DPO trainer', () => {
  it('on ranked comparisons: the loss falls and the policy separates chosen from rejected responses', async () => {
    const reference = right(windowMlpPolicy(config, rng(1)));
    const policy = right(windowMlpPolicy(config, rng(2)));
    right(copyParameters(reference, policy));
    const batch = rankingBatch(rng(3), 32, 3);
    const trainer = right(dpoTrainer({ policy, reference, optimizer: { lr: 0.01 }, beta: 0.5 }));
    const first = right(await trainer.step(batch)());
    expect(first.loss).toBeCloseTo(Math.log(2), 10); // policy = reference at the start
    let last = first;
    for (let i = 0; i < 40; i++) last = right(await trainer.step(batch)());
    expect(last.loss).toBeLessThan(first.loss - 0.1);
    expect(last.accuracy).toBeGreaterThan(0.8);
    expect(last.rewardMargin).toBeGreaterThan(0);
    // Measured independently of the trainer: the policy's log-ratio chosen − rejected grew relative to
    // the reference's (both may fall: DPO moves the margin, not each log-probability).
    const pairs = rankingToPairs(batch);
    const margin = (p: typeof policy) => {
      const c = sumRows(right(tokenLogprobs(p, js)(pairs.chosen, pairs.chosenMask)).logprobs, pairs.chosenMask);
      const r = sumRows(right(tokenLogprobs(p, js)(pairs.rejected, pairs.rejectedMask)).logprobs, pairs.rejectedMask);
      return c.reduce((a, x, i) => a + x - r[i]!, 0) / c.length;
    };
    expect(margin(policy)).toBeGreaterThan(margin(reference) + 0.5);
  });

  it('trains a policy whose logits are float32 as it trains the float64 one', async () => {
    const batch = rankingBatch(rng(3), 8, 3);
    const runs = [false, true].map(async (f32) => {
      const policy = right(windowMlpPolicy(config, rng(2)));
      const reference = right(windowMlpPolicy(config, rng(1)));
      const asUsed = f32 ? { ...policy, logits: (t: Parameters<typeof policy.logits>[0]) => inFloat32(policy.logits(t)) } : policy;
      const trainer = right(dpoTrainer({ policy: asUsed, reference, optimizer: { lr: 0.01 }, beta: 0.5 }));
      const first = right(await trainer.step(batch)());
      return { loss: first.loss, weights: Array.from(policy.parameters[0]!.value) };
    });
    const [d64, d32] = await Promise.all(runs);
    expect(d32!.loss).toBeCloseTo(d64!.loss, 5);
    d32!.weights.forEach((w, i) => expect(w).toBeCloseTo(d64!.weights[i]!, 5));
  });

  it('rejects bad batches before computing and a reference of another vocabulary', async () => {
    const reference = right(windowMlpPolicy(config, rng(1)));
    const policy = right(windowMlpPolicy(config, rng(2)));
    const trainer = right(dpoTrainer({ policy, reference, optimizer: { lr: 0.01 } }));
    const pairs = rankingToPairs(rankingBatch(rng(3), 4, 3));
    const bad = await trainer.step({ ...pairs, chosenMask: unsafeTensor('uint8', [1, 1], new Uint8Array(1)) })();
    expect(E.isLeft(bad) && bad.left.kind).toBe('shape');
    const other = right(windowMlpPolicy({ ...config, vocabSize: V + 1 }, rng(1)));
    expect(E.isLeft(dpoTrainer({ policy, reference: other, optimizer: { lr: 0.01 } }))).toBe(true);
    expect(policy.parameters.every((p) => p.grad.every((g) => g === 0))).toBe(true);
  });
});
