import * as E from 'fp-ts/lib/Either.js';
import { guarded, paramError, shapeError, type Result } from './error.js';
import {
  allocate,
  describe,
  dtypeOf,
  formatShape,
  isTensor,
  numel,
  show,
  validShape,
  type ArrayOf,
  type DType,
  type FloatTensor,
  type MaskTensor,
  type Tensor,
} from './tensor.js';

const orList = (xs: readonly string[]): string =>
  xs.length === 1 ? xs[0]! : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;

/** `u` is a tensor of one of `dtypes` whose data length matches its shape (a detached buffer fails here). */
export const expectTensor =
  <D extends DType>(dtypes: readonly D[]) =>
  (name: string, u: unknown): Result<Tensor<D>> => {
    if (!isTensor(u)) return E.left(shapeError(`${name}: expected a ${orList(dtypes)} tensor, got ${describe(u)}`));
    if (!dtypes.includes(u.dtype as D))
      return E.left(shapeError(`${name}: expected dtype ${orList(dtypes)}, got ${u.dtype}`));
    if (!validShape(u.shape)) return E.left(shapeError(`${name}: invalid shape ${show(u.shape)}`));
    if (numel(u.shape) !== u.data.length)
      return E.left(
        shapeError(
          `${name}: shape ${formatShape(u.shape)} needs ${numel(u.shape)} elements, its array holds ${u.data.length}` +
            (u.data.length === 0 ? ' (is the buffer detached?)' : ''),
        ),
      );
    return E.right(u as Tensor<D>);
  };

export const expectFloat = expectTensor(['float32', 'float64'] as const);
export const expectInt32 = expectTensor(['int32'] as const);
export const expectMask = expectTensor(['float32', 'float64', 'uint8'] as const);

/** `t` has exactly `shape`; `-1` in `shape` accepts any size in that dimension. */
export const expectShape =
  (shape: readonly number[]) =>
  <T extends Tensor>(name: string, t: T): Result<T> =>
    t.shape.length === shape.length && shape.every((d, i) => d === -1 || d === t.shape[i])
      ? E.right(t)
      : E.left(
          shapeError(
            `${name}: expected shape ${formatShape(shape.map((d) => (d === -1 ? 'any' : d)) as never)}, got ${formatShape(t.shape)}`,
          ),
        );

export const expectRank =
  (rank: number) =>
  <T extends Tensor>(name: string, t: T): Result<T> =>
    t.shape.length === rank
      ? E.right(t)
      : E.left(shapeError(`${name}: expected a ${rank}-D tensor, got shape ${formatShape(t.shape)}`));

/** A float tensor of `rank` dimensions, of any sizes. */
export const floatOfRank =
  (rank: number) =>
  (name: string, u: unknown): Result<FloatTensor> =>
    E.chain((t: Tensor) => expectRank(rank)(name, t as FloatTensor))(expectFloat(name, u));

/** A float tensor of exactly `shape` (dtype agreement between inputs is checked by `commonFloatDType`). */
export const floatShaped =
  (shape: readonly number[]) =>
  (name: string, u: unknown): Result<FloatTensor> =>
    E.chain((t: Tensor) => expectShape(shape)(name, t as FloatTensor))(expectFloat(name, u));

/** A 0/1 mask (float32, float64 or uint8) of exactly `shape`. */
export const maskShaped =
  (shape: readonly number[]) =>
  (name: string, u: unknown): Result<MaskTensor> =>
    E.chain((t: Tensor) => expectShape(shape)(name, t as MaskTensor))(expectMask(name, u));

/** Validates an optional input: `undefined`/`null` pass as `undefined`. */
export const optional =
  <T>(check: (name: string, u: unknown) => Result<T>) =>
  (name: string, u: unknown): Result<T | undefined> =>
    u === undefined || u === null ? E.right(undefined) : check(name, u);

/** The float dtype shared by several float inputs; mixing float32 and float64 is a `shape` error. */
export const commonFloatDType = (inputs: Record<string, Tensor | undefined>): Result<'float32' | 'float64'> => {
  const present = Object.entries(inputs).filter((e): e is [string, Tensor] => e[1] !== undefined);
  const first = present[0];
  const dtype = (first?.[1].dtype ?? 'float64') as 'float32' | 'float64';
  const other = present.find(([, t]) => t.dtype !== dtype);
  return other
    ? E.left(shapeError(`${other[0]} is ${other[1].dtype} but ${first![0]} is ${dtype}: float inputs must share one dtype`))
    : E.right(dtype);
};

/**
 * An output buffer: the caller's array when given (same dtype, exact length), else a new one.
 * Lets hot loops reuse memory instead of allocating (and page-faulting) on every call.
 */
export const outputBuffer = <D extends DType>(
  name: string,
  dtype: D,
  length: number,
  given?: unknown,
): Result<ArrayOf[D]> => {
  if (given === undefined || given === null) return E.right(allocate(dtype, length));
  if (dtypeOf(given) !== dtype)
    return E.left(shapeError(`out.${name}: expected a ${dtype} array, got ${describe(given)}`));
  if ((given as ArrayOf[D]).length !== length)
    return E.left(shapeError(`out.${name}: expected length ${length}, got ${(given as ArrayOf[D]).length}`));
  return E.right(given as ArrayOf[D]);
};

type View = ArrayBufferView;
const overlaps = (a: View, b: View): boolean =>
  a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
const same = (a: View, b: View): boolean => a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength;

/**
 * Outputs share no memory with the inputs or with each other, except an output that is exactly one of
 * the inputs where the op writes it in place (`inPlace`: each element is read before it is written).
 * Anything else would read what the kernel already wrote: a changed label, a half-updated reward.
 */
export const separateOutputs = (
  outputs: Record<string, View | null>,
  inputs: Record<string, View | null | undefined>,
  inPlace: readonly (readonly [output: string, input: string])[] = [],
): Result<void> => {
  const outs = Object.entries(outputs).filter((e): e is [string, View] => e[1] !== null);
  const ins = Object.entries(inputs).filter((e): e is [string, View] => e[1] != null);
  for (const [i, [o, ov]] of outs.entries()) {
    for (const [name, iv] of ins)
      if (overlaps(ov, iv) && !(same(ov, iv) && inPlace.some(([a, b]) => a === o && b === name)))
        return E.left(shapeError(`out.${o} shares memory with the input ${name}${same(ov, iv) ? ' (this op does not write it in place)' : ''}`));
    for (const [o2, ov2] of outs.slice(i + 1))
      if (overlaps(ov, ov2)) return E.left(shapeError(`out.${o} and out.${o2} share memory`));
  }
  return E.right(undefined);
};

/**
 * A primitive `(params, out) => (inputs) => Result` that never throws: a getter that throws or a
 * revoked Proxy among its arguments (read at either call) is a Left, like any other bad input.
 */
export const total =
  <P extends unknown[], I, A>(primitive: (...params: P) => (inputs: I) => Result<A>) =>
  (...params: P) =>
  (inputs: I): Result<A> =>
    guarded(() => primitive(...params)(inputs));

// ---- parameters --------------------------------------------------------------------------------

const isNumber = (u: unknown): u is number => typeof u === 'number' && !Number.isNaN(u);

/**
 * A numeric parameter with a default (SPEC: `null` is the same as leaving it out) and a domain.
 * `domain` names the domain in the error message, e.g. "> 0".
 */
export const numberParam = (
  name: string,
  value: unknown,
  fallback: number,
  ok: (x: number) => boolean,
  domain: string,
): Result<number> => {
  const v = value ?? fallback;
  return isNumber(v) && ok(v) ? E.right(v) : E.left(paramError(`${name} must be ${domain}, got ${String(v)}`));
};

export const positive = (name: string, value: unknown, fallback: number): Result<number> =>
  numberParam(name, value, fallback, (x) => x > 0 && Number.isFinite(x), 'a finite number > 0');

export const nonNegative = (name: string, value: unknown, fallback: number): Result<number> =>
  numberParam(name, value, fallback, (x) => x >= 0 && Number.isFinite(x), 'a finite number ≥ 0');

export const inClosedRange = (name: string, value: unknown, fallback: number, lo: number, hi: number): Result<number> =>
  numberParam(name, value, fallback, (x) => x >= lo && x <= hi, `in [${lo}, ${hi}]`);

export const integerParam = (name: string, value: unknown, fallback: number): Result<number> =>
  numberParam(name, value, fallback, (x) => Number.isSafeInteger(x), 'an integer');

export const booleanParam = (name: string, value: unknown, fallback: boolean): Result<boolean> => {
  const v = value ?? fallback;
  return typeof v === 'boolean' ? E.right(v) : E.left(paramError(`${name} must be true or false, got ${show(v)}`));
};

export const oneOf = <A extends string>(name: string, value: unknown, fallback: A, options: readonly A[]): Result<A> => {
  const v = value ?? fallback;
  return options.includes(v as A)
    ? E.right(v as A)
    : E.left(paramError(`${name} must be one of ${options.map((o) => `'${o}'`).join(', ')}, got ${show(v)}`));
};
