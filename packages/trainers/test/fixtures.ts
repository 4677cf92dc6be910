import { unsafeTensor, type IntTensor, type MaskTensor } from '@rlhf/tensor';
import type { RankingBatch, Rng } from '@rlhf/trainers';

/** Tiny comparison data: sequences of `L` tokens over `V` ids; the utility counts token 1 in the response. */
export const V = 4;
export const P = 1;
export const L = 5;

export const utility = (tokens: ArrayLike<number>, from: number, to: number): number => {
  let u = 0;
  for (let i = from; i < to; i++) if (tokens[i] === 1) u++;
  return u;
};

/** B prompts with K random responses each, ranked by utility (ties share a rank). */
export const rankingBatch = (rng: Rng, B: number, K: number): RankingBatch => {
  const tokens = Int32Array.from({ length: B * K * L }, () => rng.int(V));
  const mask = new Uint8Array(B * K * L);
  const ranks = new Int32Array(B * K);
  for (let r = 0; r < B * K; r++) mask.fill(1, r * L + P, (r + 1) * L);
  for (let b = 0; b < B; b++) {
    const u = Array.from({ length: K }, (_, i) => utility(tokens, (b * K + i) * L + P, (b * K + i + 1) * L));
    const levels = [...new Set(u)].sort((x, y) => y - x);
    u.forEach((x, i) => (ranks[b * K + i] = levels.indexOf(x)));
  }
  return {
    tokens: unsafeTensor('int32', [B, K, L], tokens),
    mask: unsafeTensor('uint8', [B, K, L], mask),
    ranks: unsafeTensor('int32', [B, K], ranks),
  };
};

export const responseMask = (B: number): MaskTensor => {
  const m = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) m.fill(1, b * L + P, (b + 1) * L);
  return unsafeTensor('uint8', [B, L], m);
};

export const tokensOf = (B: number, rng: Rng): IntTensor => unsafeTensor('int32', [B, L], Int32Array.from({ length: B * L }, () => rng.int(V)));
