import type { Parameter } from '../model.js';

/** The L2 norm of all gradients together. */
export const globalGradNorm = (params: readonly Parameter[]): number => {
  let s = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) s += p.grad[i]! * p.grad[i]!;
  return Math.sqrt(s);
};

/**
 * Scales all gradients together so that their global L2 norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
 */
export const clipGradNorm = (params: readonly Parameter[], maxNorm: number): number => {
  const norm = globalGradNorm(params);
  if (Number.isFinite(norm) && norm > maxNorm) {
    const scale = maxNorm / (norm + 1e-6);
    for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i]! *= scale;
  }
  return norm;
};
