import { describe, expect, it } from 'vitest';
import type { DpoLossType } from '@rlhf/kernels';
import { expectClose, onEveryIsa, randomVector, reference, requireNative, rng } from './helpers.js';

const raw = requireNative();

describe('pairwise: cpu matches js', () => {
  it.each([1, 7, 1000])('B = %i, margins, label smoothing and centering', (B) => {
    for (const [labelSmoothing, centerCoef, withMargin] of [[0, 0, false], [0.1, 0.01, true], [0.3, 0, true]] as const) {
      const r = rng(B + labelSmoothing * 100);
      const chosen = randomVector(r, B, 3), rejected = randomVector(r, B, 3);
      chosen[0] = rejected[0]!; // a tie: not counted as correct
      const margin = withMargin ? randomVector(r, B) : null;
      const run = (k = raw) => {
        const out = { gradChosen: new Float32Array(B), gradRejected: new Float32Array(B) };
        const stats = k.pairwise({ B, chosen, rejected, margin, labelSmoothing, centerCoef, ...out });
        return { ...stats, ...out };
      };
      const got = run(), want = run(reference);
      expectClose([got.loss, got.accuracy], [want.loss, want.accuracy], { rtol: 1e-6, atol: 1e-7 });
      expectClose(got.gradChosen, want.gradChosen, { rtol: 1e-5, atol: 1e-8 });
      expectClose(got.gradRejected, want.gradRejected, { rtol: 1e-5, atol: 1e-8 });
    }
  });
});

describe('dpo: cpu matches js', () => {
  it.each<DpoLossType>(['sigmoid', 'hinge', 'ipo'])('%s', (lossType) => {
    const B = 257;
    const r = rng(lossType.length);
    const [pc, pr, rc, rr] = [0, 1, 2, 3].map(() => randomVector(r, B, 20));
    for (const [beta, labelSmoothing] of [[0.1, 0], [0.5, 0.2], [2, 0]] as const) {
      const run = (k = raw) => {
        const out = {
          gradPolicyChosen: new Float32Array(B),
          gradPolicyRejected: new Float32Array(B),
          rewardsChosen: new Float32Array(B),
          rewardsRejected: new Float32Array(B),
        };
        const stats = k.dpo({ B, policyChosen: pc!, policyRejected: pr!, refChosen: rc!, refRejected: rr!, beta, lossType, labelSmoothing, ...out });
        return { ...stats, ...out };
      };
      const got = run(), want = run(reference);
      expectClose([got.loss, got.accuracy], [want.loss, want.accuracy], { rtol: 1e-6, atol: 1e-7, label: `${lossType} β=${beta}` });
      for (const name of ['gradPolicyChosen', 'gradPolicyRejected', 'rewardsChosen', 'rewardsRejected'] as const)
        expectClose(got[name], want[name], { rtol: 1e-5, atol: 1e-8, label: `${lossType} ${name}` });
    }
  });
});

/** [B, K] ranks: a permutation per prompt, with ties and padded slots (−1) mixed in. */
const randomRanks = (r: ReturnType<typeof rng>, B: number, K: number, ties: boolean, padding: boolean) => {
  const ranks = new Int32Array(B * K);
  for (let b = 0; b < B; b++) {
    const perm = Array.from({ length: K }, (_, i) => i).sort(() => r.next() - 0.5);
    for (let i = 0; i < K; i++) {
      let rank = perm[i]!;
      if (ties && r.next() < 0.2) rank = Math.max(0, rank - 1);
      if (padding && r.next() < 0.15) rank = -1;
      ranks[b * K + i] = rank;
    }
  }
  return ranks;
};

describe('ranking: cpu matches js', () => {
  it.each([
    [1, 2],
    [33, 4],
    [100, 8],
    [40, 17],
    [3, 1100], // above the lane-per-prompt width: one prompt at a time
  ])('B = %i, K = %i, every ISA, ties and padding with NaN rewards in padded slots', (B, K) => {
    onEveryIsa((isa) => {
      for (const [ties, padding] of [[false, false], [true, true]] as const) {
        const r = rng(B * K + (ties ? 1 : 0));
        const rewards = randomVector(r, B * K, 2);
        const ranks = randomRanks(r, B, K, ties, padding);
        for (let i = 0; i < B * K; i++) if (ranks[i] === -1) rewards[i] = i % 2 ? NaN : Infinity;
        const run = (k = raw) => {
          const grad = new Float32Array(B * K);
          return { ...k.ranking({ B, K, rewards, ranks, grad }), grad };
        };
        const got = run(), want = run(reference);
        const label = `${isa} B=${B} K=${K} ties=${ties}`;
        expect(got.pairs, label).toBe(want.pairs);
        if (want.pairs === 0) continue;
        expectClose([got.loss, got.accuracy], [want.loss, want.accuracy], { rtol: 2e-6, atol: 1e-7, label });
        expectClose(got.grad, want.grad, { rtol: 1e-5, atol: 1e-9, label });
      }
    });
  });

  it('very separated rewards: log σ stays accurate (log1p of tiny values), no overflow', () => {
    onEveryIsa((isa) => {
      const B = 20, K = 3;
      const rewards = Float32Array.from({ length: B * K }, (_, i) => ((i % K) - 1) * (i < 30 ? 40 : 3000));
      const ranks = Int32Array.from({ length: B * K }, (_, i) => K - 1 - (i % K));
      const run = (k = raw) => {
        const grad = new Float32Array(B * K);
        return { ...k.ranking({ B, K, rewards, ranks, grad }), grad };
      };
      const got = run(), want = run(reference);
      expectClose([got.loss], [want.loss], { rtol: 1e-5, atol: 0, label: isa });
      expectClose(got.grad, want.grad, { rtol: 1e-5, atol: 1e-25, label: isa }); // exact 0 where js rounds σ(−40) − σ(−40)
    });
  });

  it('no pair at all: pairs = 0 (the facade turns it into an empty error)', () => {
    const grad = new Float32Array(4);
    const stats = raw.ranking({ B: 2, K: 2, rewards: new Float32Array(4), ranks: Int32Array.of(0, 0, -1, 1), grad });
    expect(stats.pairs).toBe(0);
  });
});
