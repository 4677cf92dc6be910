import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  commonFloatDType,
  expectFloat,
  expectShape,
  oneOf,
  outputBuffer,
  separateOutputs,
  total,
  positive,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type Result,
} from '@rlhf/tensor';

/** Schulman's estimators of KL(π‖π_ref) from one sampled token ("Approximating KL divergence"). */
export type KlEstimator = 'k1' | 'k2' | 'k3' | 'abs';
export const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3', 'abs'];

export interface KlEstimateParams {
  /** Default k1. */
  readonly estimator?: KlEstimator | null;
  /** c > 0: the estimate is clipped to [−c, c], with gradient 0 where clipping is active (OpenRLHF uses 10). */
  readonly clamp?: number | null;
}
export interface KlEstimateInputs {
  readonly logprobs: FloatTensor;
  readonly refLogprobs: FloatTensor;
}
export interface KlEstimateOutputs {
  readonly kl: FloatTensor;
  readonly gradLogprobs: FloatTensor;
}
export interface KlEstimateOut {
  readonly kl?: FloatArray;
  readonly gradLogprobs?: FloatArray;
}

/** One estimator as a function of `δ = logprobs − refLogprobs`, and its derivative in δ. */
export interface PointwiseKl {
  readonly value: (delta: number) => number;
  readonly grad: (delta: number) => number;
}

const ESTIMATORS: Readonly<Record<KlEstimator, PointwiseKl>> = {
  k1: { value: (d) => d, grad: () => 1 },
  k2: { value: (d) => (d * d) / 2, grad: (d) => d },
  // e^{−δ} − 1 + δ, with expm1 so that small δ keeps its digits (k3 ≈ δ²/2 there).
  k3: { value: (d) => Math.expm1(-d) + d, grad: (d) => -Math.expm1(-d) },
  abs: { value: Math.abs, grad: (d) => (d === 0 ? 0 : Math.sign(d)) },
};

/** The estimator, clipped to [−clamp, clamp] when a clamp is given (clipping only strictly outside). */
export const pointwiseKl = (estimator: KlEstimator, clamp?: number): PointwiseKl => {
  const k = ESTIMATORS[estimator];
  if (clamp === undefined) return k;
  return {
    value: (d) => {
      const v = k.value(d);
      return v > clamp ? clamp : v < -clamp ? -clamp : v;
    },
    grad: (d) => (Math.abs(k.value(d)) > clamp ? 0 : k.grad(d)),
  };
};

export const estimatorParam = (value: unknown): Result<KlEstimator> => oneOf('estimator', value, 'k1', KL_ESTIMATORS);

const clampParam = (value: unknown): Result<number | undefined> =>
  value === undefined || value === null ? E.right(undefined) : positive('clamp', value, 0);

/** `refLogprobs` has the shape and float dtype of `logprobs`. */
export const logprobPair = (
  logprobs: unknown,
  refLogprobs: unknown,
): Result<{ logprobs: FloatTensor; refLogprobs: FloatTensor }> =>
  pipe(
    E.Do,
    E.bind('logprobs', () => expectFloat('logprobs', logprobs)),
    E.bind('refLogprobs', ({ logprobs: lp }) =>
      pipe(
        expectFloat('refLogprobs', refLogprobs),
        E.chain((t) => expectShape(lp.shape)('refLogprobs', t)),
      ),
    ),
    E.chainFirst((pair) => commonFloatDType(pair)),
    E.map((pair) => pair as { logprobs: FloatTensor; refLogprobs: FloatTensor }),
  );

/**
 * SPEC §3 kl.estimate: the per-token KL estimate and its gradient in `logprobs`, elementwise over
 * tensors of any rank.
 *
 * @example pipe({ logprobs, refLogprobs }, klEstimate({ estimator: 'k3', clamp: 10 }))
 */
export const klEstimate = total(
  (params?: KlEstimateParams, out?: KlEstimateOut) =>
  (inputs: KlEstimateInputs): Result<KlEstimateOutputs> =>
    pipe(
      E.Do,
      E.bind('pair', () => logprobPair(inputs?.logprobs, inputs?.refLogprobs)),
      E.bind('estimator', () => estimatorParam(params?.estimator)),
      E.bind('clamp', () => clampParam(params?.clamp)),
      E.bind('kl', ({ pair }) => outputBuffer('kl', pair.logprobs.dtype, pair.logprobs.data.length, out?.kl)),
      E.bind('grad', ({ pair }) =>
        outputBuffer('gradLogprobs', pair.logprobs.dtype, pair.logprobs.data.length, out?.gradLogprobs),
      ),
      // Elementwise, each δ read before its outputs are written: either output may be an input itself.
      E.chainFirst(({ pair, kl, grad }) =>
        separateOutputs({ kl, gradLogprobs: grad }, { logprobs: pair.logprobs.data, refLogprobs: pair.refLogprobs.data }, [
          ['kl', 'logprobs'],
          ['kl', 'refLogprobs'],
          ['gradLogprobs', 'logprobs'],
          ['gradLogprobs', 'refLogprobs'],
        ]),
      ),
      E.map(({ pair: { logprobs, refLogprobs }, estimator, clamp, kl, grad }) => {
        const k = pointwiseKl(estimator, clamp);
        for (let i = 0; i < kl.length; i++) {
          const delta = logprobs.data[i]! - refLogprobs.data[i]!;
          kl[i] = k.value(delta);
          grad[i] = k.grad(delta);
        }
        return {
          kl: unsafeTensor(logprobs.dtype, logprobs.shape, kl) as FloatTensor,
          gradLogprobs: unsafeTensor(logprobs.dtype, logprobs.shape, grad) as FloatTensor,
        };
      }),
    ),
);
