import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  expectInt32,
  expectShape,
  floatOfRank,
  nonNegative,
  numberParam,
  guarded,
  outputBuffer,
  separateOutputs,
  total,
  positive,
  shapeError,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type IntTensor,
  type Result,
} from '@rlhf/tensor';

/**
 * The KL coefficient β as a value: `update` returns the next controller and leaves this one as it is,
 * so a training loop folds it over its steps.
 */
export interface KlController {
  readonly kind: 'fixed' | 'adaptive';
  readonly beta: number;
  /** One update after `nSteps` ≥ 0 samples whose mean KL was `observedKl`. */
  readonly update: (observedKl: number, nSteps: number) => Result<KlController>;
}

export interface AdaptiveKlParams {
  /** Initial β ≥ 0, default 0.2. */
  readonly initKlCoef?: number | null;
  /** The KL to steer towards, > 0, default 6. */
  readonly target?: number | null;
  /** > 0, default 10000: how many samples it takes to move β by the full proportional error. */
  readonly horizon?: number | null;
}

/** An update's arguments: `observedKl` is data (NaN propagates), `nSteps` a parameter (an integer ≥ 0). */
const updateArgs = (observedKl: unknown, nSteps: unknown): Result<number> =>
  guarded(() =>
    typeof observedKl !== 'number'
      ? E.left(shapeError(`observedKl: expected a number, got ${typeof observedKl}`))
      : numberParam('nSteps', nSteps, 0, (n) => Number.isSafeInteger(n) && n >= 0, 'an integer ≥ 0'),
  );

/** β never changes (`update` only checks its arguments). */
export const fixedKlController = (beta: number): Result<KlController> =>
  pipe(
    guarded(() => nonNegative('beta', beta, 0.05)),
    E.map((b) => {
      const controller: KlController = {
        kind: 'fixed',
        beta: b,
        update: (observedKl, nSteps) =>
          pipe(
            updateArgs(observedKl, nSteps),
            E.map(() => controller),
          ),
      };
      return controller;
    }),
  );

const adaptiveFrom = (beta: number, target: number, horizon: number): KlController => ({
  kind: 'adaptive',
  beta,
  update: (observedKl, nSteps) =>
    pipe(
      updateArgs(observedKl, nSteps),
      E.map((n) => {
        // nSteps = 0, or β = 0 (initKlCoef 0), is a factor of 0: β stays, even if observedKl is not
        // finite (SPEC preamble).
        if (n === 0 || beta === 0) return adaptiveFrom(beta, target, horizon);
        const error = Math.min(Math.max(observedKl / target - 1, -0.2), 0.2);
        return adaptiveFrom(beta * (1 + (error * n) / horizon), target, horizon);
      }),
    ),
});

/**
 * The adaptive controller of Ziegler et al. 2019 (SPEC §3 kl.adaptive):
 * `e = clip(observedKl/target − 1, −0.2, 0.2)`, `β ← β·(1 + e·nSteps/horizon)`.
 */
export const adaptiveKlController = (params?: AdaptiveKlParams): Result<KlController> =>
  guarded(() =>
    pipe(
      E.Do,
      E.bind('initKlCoef', () => nonNegative('initKlCoef', params?.initKlCoef, 0.2)),
      E.bind('target', () => positive('target', params?.target, 6)),
      E.bind('horizon', () => positive('horizon', params?.horizon, 10000)),
      E.map(({ initKlCoef, target, horizon }) => adaptiveFrom(initKlCoef, target, horizon)),
    ),
  );

export interface AdaptiveKlInputs {
  /** [S] the mean KL observed before each update. */
  readonly observedKl: FloatTensor;
  /** [S] int32 ≥ 0: samples in each update. */
  readonly nSteps: IntTensor;
}
export interface AdaptiveKlOutputs {
  /** [S] β after each update. */
  readonly beta: FloatTensor;
}
export interface AdaptiveKlOut {
  readonly beta?: FloatArray;
}

/**
 * SPEC §3 kl.adaptive: the sequence of β after each of S updates of `adaptiveKlController`
 * (the controller folded over the inputs).
 */
export const adaptiveKl = total(
  (params?: AdaptiveKlParams, out?: AdaptiveKlOut) =>
  (inputs: AdaptiveKlInputs): Result<AdaptiveKlOutputs> =>
    pipe(
      E.Do,
      E.bind('observedKl', () => floatOfRank(1)('observedKl', inputs?.observedKl)),
      E.bind('nSteps', ({ observedKl }) =>
        pipe(
          expectInt32('nSteps', inputs.nSteps),
          E.chain((t) => expectShape(observedKl.shape)('nSteps', t)),
        ),
      ),
      E.bind('initial', () => adaptiveKlController(params)),
      E.bind('betas', ({ observedKl, nSteps, initial }) => {
        // Folded into a scratch array so that a bad nSteps leaves the caller's buffer untouched.
        const betas = new Float64Array(observedKl.data.length);
        let controller = initial;
        for (let s = 0; s < betas.length; s++) {
          const next = controller.update(observedKl.data[s]!, nSteps.data[s]!);
          if (E.isLeft(next)) return E.left(next.left);
          controller = next.right;
          betas[s] = controller.beta;
        }
        return E.right(betas);
      }),
      E.bind('beta', ({ observedKl }) => outputBuffer('beta', observedKl.dtype, observedKl.data.length, out?.beta)),
      // β is written from a scratch array after every input was read: it may be observedKl itself.
      E.chainFirst(({ observedKl, nSteps, beta }) =>
        separateOutputs({ beta }, { observedKl: observedKl.data, nSteps: nSteps.data }, [['beta', 'observedKl']]),
      ),
      E.map(({ observedKl, betas, beta }) => {
        beta.set(betas);
        return { beta: unsafeTensor(observedKl.dtype, observedKl.shape, beta) as FloatTensor };
      }),
    ),
);
