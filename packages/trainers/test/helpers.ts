import * as E from 'fp-ts/lib/Either.js';
import { expect } from 'vitest';
import type { RlhfError } from '@rlhf/tensor';

// RLHF_BACKEND=cpu or cuda (native/tests/run-cuda-emulated-node.sh) runs these suites on that backend,
// which must be registered first: otherwise the default stays js (with a process warning).
const wanted = process.env['RLHF_BACKEND'];
if (wanted !== undefined && wanted !== 'js') await import('@rlhf/native');

/** The Right value, failing the test on a Left. */
export const right = <A>(e: E.Either<RlhfError, A>): A => {
  if (E.isLeft(e)) throw new Error(`expected Right, got ${e.left.message}`);
  return e.right;
};

/** The Left value, failing the test on a Right. */
export const left = <A>(e: E.Either<RlhfError, A>): RlhfError => {
  expect(E.isLeft(e)).toBe(true);
  return (e as E.Left<RlhfError>).left;
};
