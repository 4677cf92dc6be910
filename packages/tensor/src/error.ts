import * as E from 'fp-ts/lib/Either.js';

/** The four kinds of bad input the SPEC distinguishes (SPEC §6). */
export type RlhfErrorKind = 'shape' | 'index' | 'param' | 'empty';

/** A typed error: every primitive returns it as `Left`, it is never thrown past the API. */
export class RlhfError extends Error {
  override readonly name = 'RlhfError';
  constructor(
    readonly kind: RlhfErrorKind,
    message: string,
  ) {
    super(`[${kind}] ${message}`);
  }
}

/** What every primitive returns: its outputs, or the typed error of bad input. */
export type Result<A> = E.Either<RlhfError, A>;

export const shapeError = (message: string): RlhfError => new RlhfError('shape', message);
export const indexError = (message: string): RlhfError => new RlhfError('index', message);
export const paramError = (message: string): RlhfError => new RlhfError('param', message);
export const emptyError = (message: string): RlhfError => new RlhfError('empty', message);

export const isRlhfError = (u: unknown): u is RlhfError => u instanceof RlhfError;

/**
 * Turns anything caught at a boundary (native code, user callbacks) into an RlhfError,
 * keeping the kind when it already is one.
 */
export const toRlhfError = (u: unknown): RlhfError => {
  if (isRlhfError(u)) return u;
  const kind = (u as { kind?: unknown } | null)?.kind;
  const message = u instanceof Error ? u.message : String(u);
  return kind === 'shape' || kind === 'index' || kind === 'param' || kind === 'empty'
    ? new RlhfError(kind, message.replace(/^\[\w+\] /, ''))
    : new RlhfError('shape', message);
};

/** `f()`, with anything it throws (a getter that throws, a revoked Proxy among the arguments) as a Left. */
export const guarded = <A>(f: () => Result<A>): Result<A> => E.flatten(E.tryCatch(f, toRlhfError));
