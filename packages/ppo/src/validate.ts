import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  commonFloatDType,
  expectFloat,
  expectRank,
  maskShaped,
  expectShape,
  outputBuffer,
  separateOutputs,
  total,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type RlhfError,
} from '@rlhf/tensor';

export interface Batch<K extends string> {
  readonly tensors: Readonly<Record<K, FloatTensor>>;
  readonly mask: MaskTensor;
  readonly dtype: FloatTensor['dtype'];
  readonly shape: readonly [number, number];
}

/**
 * The float `[B, T]` inputs `names` of a loss (one shape, one dtype; the first fixes both) and its mask
 * (float32, float64 or uint8, same shape).
 */
export const batchInputs = <K extends string>(
  names: readonly [K, ...K[]],
  inputs: Partial<Record<K | 'mask', unknown>> | undefined,
): E.Either<RlhfError, Batch<K>> => {
  const tensors = {} as Record<K, FloatTensor>;
  let shape: readonly number[] | undefined;
  for (const name of names) {
    const checked = pipe(
      expectFloat(name, inputs?.[name]),
      E.chain((t) => (shape === undefined ? expectRank(2)(name, t) : expectShape(shape)(name, t))),
    );
    if (E.isLeft(checked)) return checked;
    tensors[name] = checked.right as FloatTensor;
    shape ??= checked.right.shape;
  }
  return pipe(
    E.Do,
    E.bind('dtype', () => commonFloatDType(tensors)),
    E.bind('mask', () => maskShaped(shape!)('mask', inputs?.mask)),
    E.map(({ dtype, mask }) => ({ tensors, mask, dtype, shape: shape as [number, number] })),
  );
};

/**
 * A loss's gradient buffer (the caller's `given`, or a new one), sharing no memory with the batch
 * except exactly one of its float inputs: the loss loop (weightedLoss) reads token i, then writes grad[i].
 */
export const gradientBuffer = <K extends string>(name: string, batch: Batch<K>, given: unknown): E.Either<RlhfError, FloatArray> =>
  pipe(
    outputBuffer(name, batch.dtype, batch.mask.data.length, given),
    E.chainFirst((grad) =>
      separateOutputs(
        { [name]: grad },
        { ...dataOf(batch.tensors), mask: batch.mask.data },
        Object.keys(batch.tensors).map((input) => [name, input] as const),
      ),
    ),
  );

/** The arrays of named tensors (absent ones left out), for the output-overlap check. */
export const dataOf = (tensors: Readonly<Record<string, { readonly data: ArrayBufferView } | null | undefined>>) =>
  Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, t?.data]));

/** A loss from its `prepare…` function (validate, then return the computation): validate and compute at once. */
export const computeNow = <P, Out, I, O>(prepare: (params?: P, out?: Out) => (inputs: I) => E.Either<RlhfError, () => O>) =>
  total(
    (params?: P, out?: Out) =>
      (inputs: I): E.Either<RlhfError, O> =>
        pipe(
          prepare(params, out)(inputs),
          E.map((compute) => compute()),
        ),
  );
