import { onBackend } from '@rlhf/kernels';

/**
 * Bradley–Terry loss on (chosen, rejected) reward pairs, with optional margin, label smoothing and
 * TRL's reward-centering term (SPEC §1). Returns loss, both gradients and pair accuracy.
 *
 * @example pipe({ chosen, rejected }, pairwise({ labelSmoothing: 0.1 }))
 */
export const pairwise = onBackend((k) => k.pairwise);
