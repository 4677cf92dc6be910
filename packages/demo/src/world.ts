import { unsafeTensor, type IntTensor, type MaskTensor } from '@rlhf/tensor';
import type { RankingBatch, Rng } from '@rlhf/trainers';

/**
 * The demo's small world: a vocabulary of 16 tokens, a random Markov chain that writes the
 * pretraining corpus, and a simulated annotator whose hidden utility the trainers never see.
 *
 * Hidden utility of a response: +1 for each "good" token, −1 for each token that repeats the one
 * before it (annotators dislike stutter). The corpus seldom uses good tokens and seldom repeats,
 * so there is room to improve, and a reward model trained on the pretrained policy's samples sees
 * few repeats: pushing far from that policy can find what the reward model never learnt.
 */
export const VOCAB = 16;
export const GOOD_TOKENS: ReadonlySet<number> = new Set([3, 7, 11, 13]);

export interface World {
  /** Row-stochastic transition weights [V, V]. */
  readonly transitions: Float64Array;
  readonly promptLength: number;
  readonly responseLength: number;
}

export const makeWorld = (rng: Rng, promptLength = 2, responseLength = 10): World => {
  const transitions = new Float64Array(VOCAB * VOCAB);
  for (let a = 0; a < VOCAB; a++)
    for (let b = 0; b < VOCAB; b++) {
      // Log-normal weights give each token a few likely successors; good tokens and repeats are rarer.
      const w = Math.exp(1.2 * rng.normal()) * (GOOD_TOKENS.has(b) ? 0.4 : 1) * (a === b ? 0.15 : 1);
      transitions[a * VOCAB + b] = w;
    }
  return { transitions, promptLength, responseLength };
};

/** n sequences of `length` tokens from the chain (uniform first token). */
export const corpus = (world: World, rng: Rng, n: number, length: number): IntTensor => {
  const data = new Int32Array(n * length);
  for (let i = 0; i < n; i++) {
    data[i * length] = rng.int(VOCAB);
    for (let t = 1; t < length; t++)
      data[i * length + t] = rng.categorical(world.transitions.subarray(data[i * length + t - 1]! * VOCAB, (data[i * length + t - 1]! + 1) * VOCAB));
  }
  return unsafeTensor('int32', [n, length], data);
};

/** Prompts are the first tokens of corpus sequences. */
export const samplePrompts = (world: World) => (rng: Rng, n: number): IntTensor => corpus(world, rng, n, world.promptLength);

/** The hidden utility of each row's response positions ([B] from tokens [B, L] and mask [B, L]). */
export const hiddenUtility = (tokens: IntTensor, mask: MaskTensor): Float64Array => {
  const [B, L] = tokens.shape as [number, number];
  const u = new Float64Array(B);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++) {
      if (mask.data[b * L + t] === 0) continue;
      const x = tokens.data[b * L + t]!;
      if (GOOD_TOKENS.has(x)) u[b]! += 1;
      if (t > 0 && mask.data[b * L + t - 1] !== 0 && tokens.data[b * L + t - 1] === x) u[b]! -= 1;
    }
  return u;
};

/**
 * The simulated annotator: sees K responses to a prompt, judges each by its utility plus Gaussian
 * noise (σ = `noise`), rounds the judgement to whole points and ranks by it (dense ranks, 0 best);
 * responses with the same rounded judgement tie.
 */
export const annotate = (tokens: IntTensor, mask: MaskTensor, k: number, rng: Rng, noise = 0.5): RankingBatch => {
  const [BK, L] = tokens.shape as [number, number];
  const B = BK / k;
  const utility = hiddenUtility(tokens, mask);
  const ranks = new Int32Array(BK);
  for (let b = 0; b < B; b++) {
    const judged = Array.from({ length: k }, (_, i) => Math.round(utility[b * k + i]! + noise * rng.normal()));
    const levels = [...new Set(judged)].sort((x, y) => y - x);
    judged.forEach((j, i) => (ranks[b * k + i] = levels.indexOf(j)));
  }
  return {
    tokens: unsafeTensor('int32', [B, k, L], tokens.data),
    mask: unsafeTensor(mask.dtype, [B, k, L], mask.data as never) as MaskTensor,
    ranks: unsafeTensor('int32', [B, k], ranks),
  };
};
