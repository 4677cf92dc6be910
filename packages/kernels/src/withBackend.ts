import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import { resolveBackend } from './registry.js';
import type { BackendName, Kernels } from './types.js';
import { total, type RlhfError } from '@rlhf/tensor';

/** The preference losses and klFull accept `backend` (a name or a Kernels object); absent, the registry's default. */
export interface BackendOption {
  readonly backend?: Kernels | BackendName | null;
}

/** Lifts a Kernels operation into a data-last primitive whose params may name the backend. */
export const onBackend = <P extends object, I, O, Out>(
  pick: (k: Kernels) => (params?: P, out?: Out) => (inputs: I) => E.Either<RlhfError, O>,
) =>
  // total: reading params.backend may throw too (a getter, a revoked Proxy) and must be a Left.
  total(
    (params?: P & BackendOption, out?: Out) =>
      (inputs: I): E.Either<RlhfError, O> =>
        pipe(
          resolveBackend(params?.backend),
          E.chain((k) => pick(k)(params, out)(inputs)),
        ),
  );
