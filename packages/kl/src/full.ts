import { onBackend } from '@rlhf/kernels';

/**
 * SPEC §2 kl.full: the exact per-row KL(p‖q) between the categorical distributions of two logit
 * matrices and its gradient in the policy logits, on the chosen backend (`params.backend`).
 * Re-exported from @rlhf/kernels so that every KL lives in this package.
 */
export const klFull = onBackend((k) => k.klFull);
