import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  emptyError,
  expectInt32,
  expectShape,
  floatOfRank,
  floatShaped,
  formatShape,
  indexError,
  numberParam,
  optional,
  shapeError,
  type FloatTensor,
  type IntTensor,
  type Result,
} from '@rlhf/tensor';

/** A float [N, V] tensor of logits with V ≥ 1. */
export const logitsRows = (name: string, u: unknown): Result<{ t: FloatTensor; N: number; V: number }> =>
  pipe(
    floatOfRank(2)(name, u),
    E.chain((t) =>
      t.shape[1]! >= 1
        ? E.right({ t, N: t.shape[0]!, V: t.shape[1]! })
        : E.left(shapeError(`${name}: the vocabulary dimension must be ≥ 1, got shape ${formatShape(t.shape)}`)),
    ),
  );

/** A float tensor of exactly `shape` whose dtype is `dtype` (all float inputs of a call share one dtype). */
export const floatLike =
  (shape: readonly number[], dtype: FloatTensor['dtype']) =>
  (name: string, u: unknown): Result<FloatTensor> =>
    pipe(
      floatShaped(shape)(name, u),
      E.chain((t) =>
        t.dtype === dtype
          ? E.right(t as FloatTensor)
          : E.left(shapeError(`${name}: expected ${dtype} like the other float inputs, got ${t.dtype}`)),
      ),
    );

export const optionalFloatLike = (shape: readonly number[], dtype: FloatTensor['dtype']) =>
  optional(floatLike(shape, dtype));

export const int32Shaped =
  (shape: readonly number[]) =>
  (name: string, u: unknown): Result<IntTensor> =>
    pipe(
      expectInt32(name, u),
      E.chain((t) => expectShape(shape)(name, t)),
    );

/** Every label is `ignoreIndex` or in [0, V). */
export const checkLabels = (labels: Int32Array, V: number, ignoreIndex: number): Result<void> => {
  for (let n = 0; n < labels.length; n++) {
    const y = labels[n]!;
    if (y !== ignoreIndex && (y < 0 || y >= V))
      return E.left(indexError(`labels[${n}] = ${y} is outside [0, ${V}) and is not ignoreIndex (${ignoreIndex})`));
  }
  return E.right(undefined);
};

/** Every rank is −1 (padding) or in [0, K). */
export const checkRanks = (ranks: Int32Array, K: number): Result<void> => {
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i]!;
    if (r !== -1 && (r < 0 || r >= K))
      return E.left(indexError(`ranks[${Math.floor(i / K)}, ${i % K}] = ${r} is outside [0, ${K}) and is not −1 (padding)`));
  }
  return E.right(undefined);
};

/**
 * Some prompt holds a pair: two ranks ≥ 0 that differ. Stops at the first such prompt (usually the
 * first), so a batch with pairs costs a few reads; one without them is refused before any kernel
 * writes its gradient, with the index error first where a rank is also out of range.
 */
export const checkHasPair = (ranks: Int32Array, K: number): Result<void> => {
  for (let b = 0; b * K < ranks.length; b++) {
    let lo = Infinity;
    let hi = -1;
    for (let k = b * K; k < (b + 1) * K; k++) {
      const r = ranks[k]!;
      if (r >= 0) (lo = Math.min(lo, r)), (hi = Math.max(hi, r));
    }
    if (hi > lo) return E.right(undefined);
  }
  return E.chain(() => E.left(emptyError('ranking: no prompt has two slots of different rank, so there is no pair to compare')))(
    checkRanks(ranks, K),
  );
};

/** Label smoothing ε ∈ [0, 0.5). */
export const labelSmoothingParam = (value: unknown): Result<number> =>
  numberParam('labelSmoothing', value, 0, (x) => x >= 0 && x < 0.5, 'in [0, 0.5)');

/** Temperature T > 0 whose 1/T is finite too (every kernel scales the logits by it). */
export const temperatureParam = (value: unknown): Result<number> =>
  numberParam('temperature', value, 1, (x) => x > 0 && Number.isFinite(x) && Number.isFinite(1 / x), 'a finite number > 0 with a finite 1/T');

