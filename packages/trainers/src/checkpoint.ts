import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { guarded, paramError, shapeError, type Result, type RlhfError } from '@rlhf/tensor';
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
): Result<{ step: number; rng: readonly number[] | null; extra: Json }> =>
  pipe(
    checkCheckpoint(ckpt),
    E.chain(() => guarded(() => plannedRestore(ckpt, into))),
    E.map((plan) => {
      plan.writes.forEach((w) => w());
      return { step: ckpt.step, rng: ckpt.rng, extra: ckpt.extra };
    }),
  );

/** The writes that restore `ckpt` into `into`, all checked before any is made. */
const plannedRestore = (
  ckpt: Checkpoint,
  into: { readonly models: Record<string, Trainable>; readonly optimizers?: Record<string, Adam> },
): Result<{ writes: (() => void)[] }> => {
  const writes: (() => void)[] = [];
  for (const [name, model] of Object.entries(into.models)) {
    const saved = Object.hasOwn(ckpt.models, name) ? ckpt.models[name] : undefined;
    if (!saved) return E.left(shapeError(`checkpoint has no model '${name}' (it has ${Object.keys(ckpt.models).join(', ')})`));
    for (const p of model.parameters) {
      const s = Object.hasOwn(saved, p.name) ? saved[p.name] : undefined;
      if (!s) return E.left(shapeError(`checkpoint model '${name}' has no parameter '${p.name}'`));
      if (s.shape.length !== p.shape.length || s.shape.some((d, i) => d !== p.shape[i]))
        return E.left(shapeError(`checkpoint parameter '${p.name}' has shape [${s.shape}], the model's is [${p.shape}]`));
      const value = decode(s.data, p.value.length, p.name);
      if (E.isLeft(value)) return value;
      writes.push(() => p.value.set(value.right));
    }
  }
  for (const [name, opt] of Object.entries(into.optimizers ?? {})) {
    const saved = Object.hasOwn(ckpt.optimizers, name) ? ckpt.optimizers[name] : undefined;
    if (!saved) return E.left(shapeError(`checkpoint has no optimizer '${name}'`));
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
  return E.right({ writes });
};

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

/** What is wrong with `u` as a checkpoint, or undefined: every field down to the base64 strings. */
const checkpointFault = (u: unknown): string | undefined => {
  if (!isRecord(u) || u['format'] !== 'rlhf-ts/checkpoint' || u['version'] !== 1) return 'is not an rlhf-ts checkpoint (version 1)';
  if (!Number.isSafeInteger(u['step']) || (u['step'] as number) < 0) return `has a bad step ${String(u['step'])}`;
  const { models, optimizers, rng } = u;
  if (!isRecord(models)) return 'has no models';
  for (const [name, params] of Object.entries(models)) {
    if (!isRecord(params)) return `model '${name}' is not a record of parameters`;
    for (const [pname, p] of Object.entries(params)) {
      const shape = isRecord(p) ? p['shape'] : undefined;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || typeof (p as Record<string, unknown>)['data'] !== 'string')
        return `parameter '${name}.${pname}' needs a shape of sizes and a base64 data string`;
    }
  }
  if (!isRecord(optimizers)) return 'has no optimizers';
  for (const [name, o] of Object.entries(optimizers)) {
    const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
    if (!isRecord(o) || !Number.isSafeInteger(o['step']) || (o['step'] as number) < 0 || !strings(o['m']) || !strings(o['v']))
      return `optimizer '${name}' needs a step ≥ 0 and base64 moments m and v`;
  }
  // Any generator's state (makeCheckpoint takes any `state()`): the one that restores it checks its form.
  if (rng !== null && !(Array.isArray(rng) && rng.every((x) => Number.isFinite(x))))
    return 'has a generator state that is not an array of numbers';
  return undefined;
};

/** `u` as a checkpoint, checked down to every field that restoring reads (a `shape` error otherwise). */
export const checkCheckpoint = (u: unknown, source = 'checkpoint'): Result<Checkpoint> =>
  guarded(() => {
    const fault = checkpointFault(u);
    return fault === undefined ? E.right(u as Checkpoint) : E.left(shapeError(`${source} ${fault}`));
  });

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
        E.chain((u) => checkCheckpoint(u, path)),
      ),
    ),
  );
