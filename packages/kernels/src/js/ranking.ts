import type { RankingStats, RawRanking } from '../raw.js';
import { logSigmoid, sigmoid } from './sigmoid.js';

/**
 * SPEC §1 preference.ranking (InstructGPT): per prompt, all pairs with `0 ≤ rank_i < rank_j`;
 * `loss_b = −(1/P_b)·Σ logσ(r_i − r_j)`, averaged over prompts that have a pair. Padded slots
 * (rank −1) and ties form no pair, so their rewards are never read.
 */
export const ranking = ({ B, K, rewards, ranks, grad }: RawRanking): RankingStats => {
  grad.fill(0);
  const pairsOf = (b: number): number => {
    let P = 0;
    for (let i = 0; i < K; i++)
      for (let j = 0; j < K; j++) if (ranks[b * K + i]! >= 0 && ranks[b * K + i]! < ranks[b * K + j]!) P++;
    return P;
  };
  let prompts = 0;
  for (let b = 0; b < B; b++) if (pairsOf(b) > 0) prompts++;
  let loss = 0;
  let pairs = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const P = pairsOf(b);
    if (P === 0) continue;
    const w = 1 / (P * prompts);
    const row = b * K;
    for (let i = 0; i < K; i++) {
      const ri = ranks[row + i]!;
      if (ri < 0) continue;
      for (let j = 0; j < K; j++) {
        if (!(ri < ranks[row + j]!)) continue;
        const diff = rewards[row + i]! - rewards[row + j]!;
        loss -= w * logSigmoid(diff);
        const g = w * sigmoid(-diff);
        grad[row + i]! -= g;
        grad[row + j]! += g;
        if (diff > 0) correct++;
        pairs++;
      }
    }
  }
  return { loss, accuracy: pairs === 0 ? 0 : correct / pairs, pairs };
};
