import * as E from 'fp-ts/lib/Either.js';
import { paramError, shapeError, type Result } from '@rlhf/tensor';
import type { Parameter } from '../model.js';
import { clipGradNorm, globalGradNorm } from './clipping.js';
import { constant, type Schedule } from './schedules.js';

export interface AdamParams {
  /** A fixed learning rate or a schedule of the step. */
  readonly lr: number | Schedule;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /** Decoupled weight decay (AdamW), default 0. */
  readonly weightDecay?: number;
  /** Clip the global gradient norm to this before each step (absent or null: no clipping). */
  readonly maxGradNorm?: number | null;
}

export interface AdamStepStats {
  /** The global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly lr: number;
  /** True when the gradient was not finite: the parameters were left as they were. */
  readonly skipped: boolean;
}

/** What a checkpoint stores to resume the optimiser exactly. */
export interface AdamState {
  readonly step: number;
  readonly m: readonly Float64Array[];
  readonly v: readonly Float64Array[];
}

export interface Adam {
  /** Applies one update from the accumulated gradients, then zeroes them. */
  readonly step: () => AdamStepStats;
  readonly stepCount: () => number;
  readonly state: () => AdamState;
  readonly restore: (state: AdamState) => Result<void>;
}

/** Adam (Kingma & Ba 2015) with bias correction, optional AdamW decay and global-norm clipping. */
export const adam = (params: readonly Parameter[], config: AdamParams): Result<Adam> => {
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, maxGradNorm = null } = config;
  const lr = typeof config.lr === 'number' ? constant(config.lr) : config.lr;
  if (typeof config.lr === 'number' && !(config.lr > 0 && Number.isFinite(config.lr)))
    return E.left(paramError(`lr must be a finite number > 0, got ${config.lr}`));
  if (!(beta1 >= 0 && beta1 < 1)) return E.left(paramError(`beta1 must be in [0, 1), got ${beta1}`));
  if (!(beta2 >= 0 && beta2 < 1)) return E.left(paramError(`beta2 must be in [0, 1), got ${beta2}`));
  if (!(eps > 0)) return E.left(paramError(`eps must be > 0, got ${eps}`));
  if (!(weightDecay >= 0)) return E.left(paramError(`weightDecay must be ≥ 0, got ${weightDecay}`));
  if (maxGradNorm !== null && !(maxGradNorm > 0)) return E.left(paramError(`maxGradNorm must be > 0, got ${maxGradNorm}`));

  let t = 0;
  const m = params.map((p) => new Float64Array(p.value.length));
  const v = params.map((p) => new Float64Array(p.value.length));

  const step = (): AdamStepStats => {
    const gradNorm = maxGradNorm === null ? globalGradNorm(params) : clipGradNorm(params, maxGradNorm);
    const rate = lr(t);
    if (!Number.isFinite(gradNorm)) {
      for (const p of params) p.grad.fill(0);
      return { gradNorm, lr: rate, skipped: true };
    }
    t++;
    const c1 = 1 - beta1 ** t;
    const c2 = 1 - beta2 ** t;
    params.forEach((p, k) => {
      const mk = m[k]!;
      const vk = v[k]!;
      for (let i = 0; i < p.value.length; i++) {
        const g = p.grad[i]!;
        mk[i] = beta1 * mk[i]! + (1 - beta1) * g;
        vk[i] = beta2 * vk[i]! + (1 - beta2) * g * g;
        const update = mk[i]! / c1 / (Math.sqrt(vk[i]! / c2) + eps);
        p.value[i] = p.value[i]! - rate * (update + weightDecay * p.value[i]!);
      }
      p.grad.fill(0);
    });
    return { gradNorm, lr: rate, skipped: false };
  };

  const restore = (s: AdamState): Result<void> => {
    if (!Number.isSafeInteger(s.step) || s.step < 0) return E.left(shapeError(`optimizer state: bad step ${s.step}`));
    if (s.m.length !== params.length || s.v.length !== params.length)
      return E.left(shapeError(`optimizer state holds ${s.m.length} moments for ${params.length} parameters`));
    for (let k = 0; k < params.length; k++)
      if (s.m[k]!.length !== params[k]!.value.length || s.v[k]!.length !== params[k]!.value.length)
        return E.left(shapeError(`optimizer state: moments of ${params[k]!.name} have the wrong length`));
    t = s.step;
    s.m.forEach((x, k) => m[k]!.set(x));
    s.v.forEach((x, k) => v[k]!.set(x));
    return E.right(undefined);
  };

  return E.right({
    step,
    stepCount: () => t,
    state: () => ({ step: t, m: m.map((x) => x.slice()), v: v.map((x) => x.slice()) }),
    restore,
  });
};
