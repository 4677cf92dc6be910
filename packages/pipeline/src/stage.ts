import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { guarded, RlhfError, toRlhfError } from '@rlhf/tensor';

/**
 * A stage of a training step: it reads the fields `Needs` of a batch record and adds the fields
 * `Adds`, keeping everything else the record already holds. Because the stage is generic in the
 * record it receives, composing stages with `pipe`/`flow` and `TE.chain` tracks the record's type:
 * a stage wired before the one that produces its input does not compile.
 */
export interface Stage<Needs extends object, Adds extends object> {
  <R extends Needs>(record: R): TE.TaskEither<RlhfError, Merge<R, Adds>>;
  readonly stageName: string;
  /**
   * Never present: it makes a stage contravariant in what it needs, so that a stage cannot be typed
   * as needing less than it reads (TypeScript does not compare generic signatures' constraints).
   */
  readonly needs?: (record: Needs) => void;
}

/**
 * A record after a stage: its fields, where `adds` wins over a field of the same name. Distributed
 * over a union record, so that each member keeps its own fields (and narrowing on a tag still works).
 */
export type Merge<R, Adds> = R extends unknown ? Omit<R, keyof Adds> & Adds : never;

/** The fields a stage reads. */
export type NeedsOf<S> = S extends Stage<infer N, infer _A> ? N : never;
/** The fields a stage adds. */
export type AddsOf<S> = S extends Stage<infer _N, infer A> ? A : never;

/** Prefixes an error with the stage that raised it, keeping its kind. */
export const inStage =
  (name: string) =>
  (e: RlhfError): RlhfError =>
    new RlhfError(e.kind, `${name}: ${e.message.replace(/^\[\w+\] /, '')}`);

const named = <N extends object, A extends object>(
  name: string,
  run: <R extends N>(record: R) => TE.TaskEither<RlhfError, Merge<R, A>>,
): Stage<N, A> => Object.assign(run, { stageName: name });

/** Merges what a stage computed into the record it was given (later fields win). */
// (A spread is typed R & A; for a generic R the compiler cannot see that this is Merge<R, A>.)
const extend = <R extends object, A extends object>(record: R, adds: A): Merge<R, A> =>
  ({ ...record, ...adds }) as unknown as Merge<R, A>;

/**
 * A stage from a synchronous computation. `run` sees only the fields it declares; anything it
 * throws (a bug in user code, a model that fails) becomes an `RlhfError` tagged with the stage name.
 */
export const stage = <Needs extends object, Adds extends object>(
  name: string,
  run: (record: Needs) => E.Either<RlhfError, Adds>,
): Stage<Needs, Adds> =>
  named<Needs, Adds>(
    name,
    // Run when the task runs (as asyncStage does), not when the stage is applied to a record.
    (record) => () =>
      Promise.resolve(
        pipe(
          guarded(() => run(record)),
          E.bimap(inStage(name), (adds) => extend(record, adds)),
        ),
      ),
  );

/** A stage from an asynchronous computation (a rollout server, a kernel off the event loop, …). */
export const asyncStage = <Needs extends object, Adds extends object>(
  name: string,
  run: (record: Needs) => TE.TaskEither<RlhfError, Adds>,
): Stage<Needs, Adds> =>
  named<Needs, Adds>(name, (record) =>
    pipe(
      TE.tryCatch(() => run(record)(), toRlhfError),
      TE.chainEitherK((inner) => inner),
      TE.bimap(inStage(name), (adds) => extend(record, adds)),
    ),
  );

/** Starts a pipeline from a record (`pipe(start(batch), TE.chain(stageA), TE.chain(stageB))`). */
export const start = <R extends object>(record: R): TE.TaskEither<RlhfError, R> => TE.right(record);
