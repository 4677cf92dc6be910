import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { paramError, shapeError, type Result, type RlhfError } from '@rlhf/tensor';
import type { Trainable } from './model.js';
import type { Adam } from './optim/adam.js';

/** JSON values, for the free-form part of a checkpoint (controller β, data cursors, …). */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/**
 * A checkpoint as JSON: parameters and optimiser moments as base64 of their float64 bytes
 * (exact, unlike decimal text), the step, the random generator's state and whatever else the
 * trainer needs to continue exactly where it stopped.
 */
export interface Checkpoint {
  readonly format: 'rlhf-ts/checkpoint';
  readonly version: 1;
  readonly step: number;
  readonly models: Record<string, Record<string, { readonly shape: readonly number[]; readonly data: string }>>;
  readonly optimizers: Record<string, { readonly step: number; readonly m: readonly string[]; readonly v: readonly string[] }>;
  readonly rng: readonly number[] | null;
  readonly extra: Json;
}

export interface CheckpointParts {
  readonly step: number;
  readonly models: Record<string, Trainable>;
  readonly optimizers?: Record<string, Adam>;
  readonly rng?: { state(): readonly number[] } | null;
  readonly extra?: Json;
}

const encode = (a: Float64Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const decode = (s: string, length: number, what: string): Result<Float64Array> => {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.byteLength !== length * 8) return E.left(shapeError(`checkpoint: ${what} holds ${bytes.byteLength / 8} values, expected ${length}`));
  const out = new Float64Array(length);
  new Uint8Array(out.buffer).set(bytes);
  return E.right(out);
};

/** A snapshot of models, optimisers and generator, detached from them (later training does not change it). */
export const makeCheckpoint = (parts: CheckpointParts): Checkpoint => ({
  format: 'rlhf-ts/checkpoint',
  version: 1,
  step: parts.step,
  models: Object.fromEntries(
    Object.entries(parts.models).map(([name, m]) => [
      name,
      Object.fromEntries(m.parameters.map((p) => [p.name, { shape: [...p.shape], data: encode(p.value) }])),
    ]),
  ),
  optimizers: Object.fromEntries(
    Object.entries(parts.optimizers ?? {}).map(([name, o]) => {
      const s = o.state();
      return [name, { step: s.step, m: s.m.map(encode), v: s.v.map(encode) }];
    }),
  ),
  rng: parts.rng ? [...parts.rng.state()] : null,
  extra: parts.extra ?? null,
});

/**
 * Loads a checkpoint into models and optimisers of the same architecture. Everything is checked
 * before anything is written, so a mismatched checkpoint leaves the models untouched.
 */
export const restoreCheckpoint = (
  ckpt: Checkpoint,
  into: { readonly models: Record<string, Trainable>; readonly optimizers?: Record<string, Adam> },
): Result<{ step: number; rng: readonly number[] | null; extra: Json }> => {
  const writes: (() => void)[] = [];
  for (const [name, model] of Object.entries(into.models)) {
    const saved = ckpt.models[name];
    if (!saved) return E.left(shapeError(`checkpoint has no model '${name}' (it has ${Object.keys(ckpt.models).join(', ')})`));
    for (const p of model.parameters) {
      const s = saved[p.name];
      if (!s) return E.left(shapeError(`checkpoint model '${name}' has no parameter '${p.name}'`));
      if (s.shape.length !== p.shape.length || s.shape.some((d, i) => d !== p.shape[i]))
        return E.left(shapeError(`checkpoint parameter '${p.name}' has shape [${s.shape}], the model's is [${p.shape}]`));
      const value = decode(s.data, p.value.length, p.name);
      if (E.isLeft(value)) return value;
      writes.push(() => p.value.set(value.right));
    }
  }
  for (const [name, opt] of Object.entries(into.optimizers ?? {})) {
    const saved = ckpt.optimizers[name];
    if (!saved) return E.left(shapeError(`checkpoint has no optimizer '${name}'`));
    if (!Number.isSafeInteger(saved.step) || saved.step < 0)
      return E.left(shapeError(`checkpoint optimizer '${name}' has a bad step ${String(saved.step)}`));
    const lengths = opt.state().m.map((x) => x.length);
    if (saved.m.length !== lengths.length || saved.v.length !== lengths.length)
      return E.left(shapeError(`checkpoint optimizer '${name}' holds ${saved.m.length} moments, expected ${lengths.length}`));
    const m = saved.m.map((s, k) => decode(s, lengths[k]!, `${name}.m[${k}]`));
    const v = saved.v.map((s, k) => decode(s, lengths[k]!, `${name}.v[${k}]`));
    const bad = [...m, ...v].find(E.isLeft);
    if (bad) return bad as E.Left<RlhfError>;
    const state = { step: saved.step, m: m.map((x) => (x as E.Right<Float64Array>).right), v: v.map((x) => (x as E.Right<Float64Array>).right) };
    writes.push(() => void opt.restore(state)); // cannot fail: its checks were all made above
  }
  writes.forEach((w) => w());
  return E.right({ step: ckpt.step, rng: ckpt.rng, extra: ckpt.extra });
};

const isCheckpoint = (u: unknown): u is Checkpoint =>
  typeof u === 'object' &&
  u !== null &&
  (u as Checkpoint).format === 'rlhf-ts/checkpoint' &&
  (u as Checkpoint).version === 1 &&
  Number.isSafeInteger((u as Checkpoint).step) &&
  typeof (u as Checkpoint).models === 'object' &&
  typeof (u as Checkpoint).optimizers === 'object';

/** Writes the checkpoint atomically (a temporary file renamed over the target). */
export const saveCheckpoint = (path: string, ckpt: Checkpoint): TE.TaskEither<RlhfError, void> =>
  TE.tryCatch(
    async () => {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, JSON.stringify(ckpt));
      await rename(`${path}.tmp`, path);
    },
    (e) => paramError(`cannot write checkpoint ${path}: ${(e as Error).message}`),
  );

export const loadCheckpoint = (path: string): TE.TaskEither<RlhfError, Checkpoint> =>
  pipe(
    TE.tryCatch(
      () => readFile(path, 'utf8'),
      (e) => paramError(`cannot read checkpoint ${path}: ${(e as Error).message}`),
    ),
    TE.chainEitherK((text) =>
      pipe(
        E.tryCatch(
          () => JSON.parse(text) as unknown,
          (e) => shapeError(`checkpoint ${path} is not JSON: ${(e as Error).message}`),
        ),
        E.chain((u) => (isCheckpoint(u) ? E.right(u) : E.left(shapeError(`${path} is not an rlhf-ts checkpoint (version 1)`)))),
      ),
    ),
  );
