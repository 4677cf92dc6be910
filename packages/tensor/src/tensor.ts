import * as E from 'fp-ts/lib/Either.js';
import { guarded, shapeError, type RlhfError } from './error.js';

export type DType = 'float32' | 'float64' | 'int32' | 'uint8';

export interface ArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint8: Uint8Array;
}

export type FloatDType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;
export type AnyArray = ArrayOf[DType];

/** A shaped array: a flat, row-major typed array and its shape. Plain data, no methods. */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: ArrayOf[D];
}

export type FloatTensor = Tensor<'float32'> | Tensor<'float64'>;
export type IntTensor = Tensor<'int32'>;
/** Masks are 0/1 in float32 or uint8 (float64 accepted too); any non-zero entry counts as 1. */
export type MaskTensor = Tensor<'float32'> | Tensor<'float64'> | Tensor<'uint8'>;

const constructors = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint8: Uint8Array,
} as const;

export const dtypeOf = (data: unknown): DType | undefined =>
  data instanceof Float32Array
    ? 'float32'
    : data instanceof Float64Array
      ? 'float64'
      : data instanceof Int32Array
        ? 'int32'
        : data instanceof Uint8Array
          ? 'uint8'
          : undefined;

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export const formatShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** An array of non-negative integers (Array.from: a hole is undefined, not skipped as `every` would). */
export const validShape = (shape: unknown): shape is readonly number[] =>
  Array.isArray(shape) && Array.from(shape).every((d) => Number.isSafeInteger(d) && d >= 0);

/** A value as a message shows it: JSON where it has one (BigInt and cycles included), else its String. */
export const show = (u: unknown): string => {
  try {
    return JSON.stringify(u, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) ?? String(u);
  } catch {
    try {
      return String(u);
    } catch {
      try {
        return Object.prototype.toString.call(u);
      } catch {
        return `a ${typeof u}`; // a revoked Proxy refuses even that
      }
    }
  }
};

/** Wraps a typed array; `shape` defaults to 1-D. Fails with `shape` if the sizes disagree (never throws). */
export const tensor = <A extends AnyArray>(data: A, shape?: readonly number[]): E.Either<RlhfError, Tensor<DTypeOfArray<A>>> =>
  guarded(() => checkedTensor(data, shape ?? [data?.length ?? 0]));

const checkedTensor = <A extends AnyArray>(data: A, shape: readonly number[]): E.Either<RlhfError, Tensor<DTypeOfArray<A>>> => {
  const dtype = dtypeOf(data);
  if (dtype === undefined)
    return E.left(shapeError(`expected a Float32Array, Float64Array, Int32Array or Uint8Array, got ${describe(data)}`));
  if (!validShape(shape)) return E.left(shapeError(`invalid shape ${show(shape)}: dimensions must be non-negative integers`));
  if (numel(shape) !== data.length)
    return E.left(shapeError(`shape ${formatShape(shape)} holds ${numel(shape)} elements, the array has ${data.length}`));
  return E.right({ dtype, shape: [...shape], data } as unknown as Tensor<DTypeOfArray<A>>);
};

export type DTypeOfArray<A> = A extends Float32Array
  ? 'float32'
  : A extends Float64Array
    ? 'float64'
    : A extends Int32Array
      ? 'int32'
      : 'uint8';

const isDType = (u: unknown): u is DType => typeof u === 'string' && Object.hasOwn(constructors, u);

/** `new constructors[dtype](length)`, or a shape error when the engine cannot allocate it. */
const tryAllocate = <D extends DType>(dtype: D, length: number): E.Either<RlhfError, ArrayOf[D]> =>
  E.tryCatch(
    () => new constructors[dtype](length) as ArrayOf[D],
    (e) => shapeError(`cannot allocate ${length} ${dtype} elements: ${e instanceof Error ? e.message : show(e)}`),
  );

/** A new tensor of zeros. */
export const zeros = <D extends DType>(dtype: D, shape: readonly number[]): E.Either<RlhfError, Tensor<D>> =>
  !isDType(dtype)
    ? E.left(shapeError(`unknown dtype ${show(dtype)}: expected float32, float64, int32 or uint8`))
    : !validShape(shape)
      ? E.left(shapeError(`invalid shape ${show(shape)}: dimensions must be non-negative integers`))
      : E.map((data: ArrayOf[D]) => ({ dtype, shape: [...shape], data }) as Tensor<D>)(tryAllocate(dtype, numel(shape)));

/** A tensor of the given dtype from plain numbers (converted, e.g. rounded to float32). */
export const fromArray = <D extends DType>(
  dtype: D,
  values: ArrayLike<number>,
  shape?: readonly number[],
): E.Either<RlhfError, Tensor<D>> =>
  !isDType(dtype)
    ? E.left(shapeError(`unknown dtype ${show(dtype)}: expected float32, float64, int32 or uint8`))
    : E.chain((data: AnyArray) => tensor(data, shape ?? [data.length]) as E.Either<RlhfError, Tensor<D>>)(
        // Reading `values` may throw (a getter, a revoked Proxy): a Left like any other bad array.
        E.tryCatch(
          () => {
            if (typeof values !== 'object' || values === null || typeof values.length !== 'number') throw new TypeError(`expected an array of numbers, got ${show(values)}`);
            return constructors[dtype].from(values) as AnyArray;
          },
          (e) => shapeError(`fromArray: ${e instanceof Error ? e.message : show(e)}`),
        ),
      );

/**
 * Internal constructor for outputs whose shape was already validated: no checks.
 * The output array, when given, is used as is (its length was checked by `outputBuffer`).
 */
export const unsafeTensor = <D extends DType>(dtype: D, shape: readonly number[], data?: ArrayOf[D]): Tensor<D> => ({
  dtype,
  shape,
  data: data ?? (new constructors[dtype](numel(shape)) as ArrayOf[D]),
});

export const allocate = <D extends DType>(dtype: D, length: number): ArrayOf[D] =>
  new constructors[dtype](length) as ArrayOf[D];

export const isTensor = (u: unknown): u is Tensor =>
  typeof u === 'object' &&
  u !== null &&
  dtypeOf((u as Tensor).data) !== undefined &&
  Array.isArray((u as Tensor).shape) &&
  (u as Tensor).dtype === dtypeOf((u as Tensor).data);

export const describe = (u: unknown): string => {
  if (u === null) return 'null';
  if (u === undefined) return 'nothing';
  if (isTensor(u)) return `${u.dtype} ${formatShape(u.shape)}`;
  const dt = dtypeOf(u);
  if (dt) return `a bare ${dt} array (wrap it with tensor(data, shape))`;
  if (Array.isArray(u)) return 'a plain JS array (wrap it with fromArray(dtype, values, shape))';
  return typeof u === 'object' ? (u as object).constructor?.name ?? 'object' : typeof u;
};
