import { onBackend } from '@rlhf/kernels';

/**
 * Direct preference optimisation on summed sequence log-probs of policy and reference:
 * sigmoid (with label smoothing), hinge or IPO loss (SPEC §1).
 */
export const dpo = onBackend((k) => k.dpo);
