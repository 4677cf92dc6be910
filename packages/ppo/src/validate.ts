import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  commonFloatDType,
  expectFloat,
  expectRank,
  maskShaped,
  expectShape,
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

/** A loss from its `prepare…` function (validate, then return the computation): validate and compute at once. */
export const computeNow =
  <P, Out, I, O>(prepare: (params?: P, out?: Out) => (inputs: I) => E.Either<RlhfError, () => O>) =>
  (params?: P, out?: Out) =>
  (inputs: I): E.Either<RlhfError, O> =>
    pipe(
      prepare(params, out)(inputs),
      E.map((compute) => compute()),
    );
