import * as E from 'fp-ts/lib/Either.js';
import { paramError, type RlhfError } from '@rlhf/tensor';

/** The learning rate at optimiser step `step` (0-based). */
export type Schedule = (step: number) => number;

export const constant =
  (lr: number): Schedule =>
  () =>
    lr;

export interface WarmupDecayParams {
  readonly lr: number;
  /**
   * Steps of linear warm-up (default 0): step s < warmupSteps uses lr·(s + 1)/warmupSteps, so the first
   * step already moves and the last warm-up step reaches lr (Hugging Face's s/warmupSteps starts at 0).
   */
  readonly warmupSteps?: number;
  /** The step at which the decay reaches `minLr`; after it the rate stays there. */
  readonly totalSteps: number;
  /** Default 0. */
  readonly minLr?: number;
}

const checkWarmupDecay = (p: WarmupDecayParams): E.Either<RlhfError, Required<WarmupDecayParams>> => {
  const { lr, warmupSteps = 0, totalSteps, minLr = 0 } = p;
  if (!(lr > 0 && Number.isFinite(lr))) return E.left(paramError(`lr must be a finite number > 0, got ${lr}`));
  if (!(minLr >= 0 && minLr <= lr)) return E.left(paramError(`minLr must be in [0, lr], got ${minLr}`));
  if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0)
    return E.left(paramError(`warmupSteps must be an integer ≥ 0, got ${warmupSteps}`));
  if (!Number.isSafeInteger(totalSteps) || totalSteps <= warmupSteps)
    return E.left(paramError(`totalSteps must be an integer > warmupSteps, got ${totalSteps}`));
  return E.right({ lr, warmupSteps, totalSteps, minLr });
};

/** The fraction of the decay done at `step` (0 during warm-up, 1 at and after `totalSteps`). */
const decayProgress = (p: Required<WarmupDecayParams>, step: number): number =>
  Math.min(1, Math.max(0, (step - p.warmupSteps) / (p.totalSteps - p.warmupSteps)));

const warmup = (p: Required<WarmupDecayParams>, step: number): number | undefined =>
  step < p.warmupSteps ? (p.lr * (step + 1)) / p.warmupSteps : undefined;

/** Linear warm-up, then linear decay to `minLr` (Hugging Face's "linear" schedule, with a warm-up of (s + 1)/W, not s/W). */
export const warmupLinear = (params: WarmupDecayParams): E.Either<RlhfError, Schedule> =>
  E.map((p: Required<WarmupDecayParams>) => (step: number) =>
    warmup(p, step) ?? p.lr + (p.minLr - p.lr) * decayProgress(p, step),
  )(checkWarmupDecay(params));

/** Linear warm-up, then half a cosine down to `minLr`. */
export const warmupCosine = (params: WarmupDecayParams): E.Either<RlhfError, Schedule> =>
  E.map((p: Required<WarmupDecayParams>) => (step: number) =>
    warmup(p, step) ?? p.minLr + ((p.lr - p.minLr) * (1 + Math.cos(Math.PI * decayProgress(p, step)))) / 2,
  )(checkWarmupDecay(params));
