import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DType, RlhfErrorKind, Tensor } from '@rlhf/tensor';

/** A tensor as a case file writes it: flat row-major data, non-finite numbers as strings. */
export interface EncodedTensor {
  /** One of the SPEC's dtypes, or another (int64, bool, …) in a case that expects a `shape` error. */
  readonly dtype: DType | (string & {});
  readonly shape: readonly number[];
  readonly data: readonly (number | string)[];
}

/** One conformance case (../shared/conformance/README.md). */
export interface Case {
  readonly name: string;
  readonly op: string;
  readonly params: Record<string, unknown>;
  /** An optional input may be given as null: the same as leaving it out. */
  readonly inputs: Record<string, EncodedTensor | null>;
  readonly expected?: Record<string, EncodedTensor>;
  readonly error?: RlhfErrorKind;
  readonly tolerance: { readonly rtol: number; readonly atol: number };
  /** The file it came from. */
  readonly file: string;
}

const decodeNumber = (x: number | string): number =>
  typeof x === 'number' ? x : x === 'NaN' ? NaN : x === 'Infinity' ? Infinity : x === '-Infinity' ? -Infinity : Number(x);

const arrays = { float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array } as const;
// Dtypes the SPEC does not allow (a case that uses one expects a `shape` error): decoded into the array
// such data would arrive in, keeping its dtype name, so the primitive sees the wrong dtype and rejects it.
const foreignArrays: Record<string, (xs: number[]) => ArrayLike<unknown>> = {
  int64: (xs) => BigInt64Array.from(xs, (x) => BigInt(Math.trunc(x))),
  uint64: (xs) => BigUint64Array.from(xs, (x) => BigInt(Math.trunc(x))),
  int8: (xs) => Int8Array.from(xs),
  int16: (xs) => Int16Array.from(xs),
  uint16: (xs) => Uint16Array.from(xs),
  uint32: (xs) => Uint32Array.from(xs),
  bool: (xs) => Uint8Array.from(xs),
};

/** Decodes a case tensor into the dtype it names (float32 inputs were already rounded by the reference). */
export const decodeTensor = (t: EncodedTensor): Tensor => {
  const xs = t.data.map(decodeNumber);
  const known = arrays[t.dtype as keyof typeof arrays];
  const data = known ? known.from(xs) : (foreignArrays[t.dtype] ?? ((v: number[]) => Float64Array.from(v)))(xs);
  return { dtype: t.dtype, shape: [...t.shape], data } as unknown as Tensor;
};

/** The contract's visible cases (copied from the shared set). */
export const sharedCasesDir = fileURLToPath(new URL('../cases/', import.meta.url));
/** The cases of the second float64 reference (reference/generate.py). */
export const generatedCasesDir = fileURLToPath(new URL('../generated/', import.meta.url));
/** What `pnpm conformance` runs without a directory: both sets. */
export const defaultCaseDirs: readonly string[] = [sharedCasesDir, generatedCasesDir];

/** Every *.json case under the given files or directories, sorted by name. */
export const loadCases = (paths: readonly string[]): Case[] =>
  paths
    .flatMap((p) =>
      statSync(p).isDirectory()
        ? readdirSync(p)
            .filter((f) => f.endsWith('.json'))
            .sort()
            .map((f) => join(p, f))
        : [p],
    )
    .map((file) => {
      const c = JSON.parse(readFileSync(file, 'utf8')) as Partial<Omit<Case, 'file'>> & Pick<Case, 'name' | 'op' | 'inputs'>;
      return { ...c, params: c.params ?? {}, tolerance: c.tolerance ?? { rtol: 1e-4, atol: 1e-5 }, file };
    });
