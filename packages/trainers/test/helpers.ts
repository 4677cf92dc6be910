import * as E from 'fp-ts/lib/Either.js';
import { expect } from 'vitest';
import { unsafeTensor, type FloatTensor, type Result, type RlhfError } from '@rlhf/tensor';
import type { Forward } from '@rlhf/trainers';

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

/**
 * A model's forward pass in float32 (what a model on the native kernels may give): the output rounded
 * to float32, the gradient handed back to the float64 model as float64.
 */
export const inFloat32 = (f: Result<Forward<FloatTensor>>): Result<Forward<FloatTensor>> =>
  E.map((fw: Forward<FloatTensor>) => ({
    output: unsafeTensor('float32', fw.output.shape, Float32Array.from(fw.output.data)) as FloatTensor,
    backward: (g: FloatTensor) => fw.backward(unsafeTensor('float64', g.shape, Float64Array.from(g.data))),
  }))(f);
