import * as E from 'fp-ts/lib/Either.js';
import { expect } from 'vitest';
import type { RlhfError } from '@rlhf/tensor';

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
