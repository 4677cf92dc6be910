import { onBackend, type RankingInputs, type RankingOut, type RankingOutputs } from '@rlhf/kernels';

/**
 * The InstructGPT K-way ranking loss: every ordered pair of a prompt's K responses, normalised by
 * the prompt's pair count (1/C(K,2) without ties or padding) and averaged over prompts (SPEC §1).
 * Ranks: smaller is preferred, equal ranks tie, −1 pads.
 */
export const ranking = onBackend<object, RankingInputs, RankingOutputs, RankingOut>(
  (k) => (_params, out) => k.ranking(undefined, out),
);
