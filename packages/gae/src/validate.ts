import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import { expectFloat, expectMask, expectShape, type RlhfError, type FloatTensor, type MaskTensor } from '@rlhf/tensor';

/** A float tensor of exactly `shape` (dtype agreement between inputs is checked by `commonFloatDType`). */
export const floatShaped =
  (shape: readonly number[]) =>
  (name: string, u: unknown): E.Either<RlhfError, FloatTensor> =>
    pipe(
      expectFloat(name, u),
      E.chain((t) => expectShape(shape)(name, t as FloatTensor)),
    );

/** A 0/1 mask (float32, float64 or uint8) of exactly `shape`. */
export const maskShaped =
  (shape: readonly number[]) =>
  (name: string, u: unknown): E.Either<RlhfError, MaskTensor> =>
    pipe(
      expectMask(name, u),
      E.chain((t) => expectShape(shape)(name, t as MaskTensor)),
    );
