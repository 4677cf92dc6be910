import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import {
  expectFloat,
  expectShape,
  fromArray,
  maskCount,
  maskedMean,
  maskedSum,
  numberParam,
  oneOf,
  outputBuffer,
  positive,
  tensor,
  toRlhfError,
  RlhfError,
  zeros,
} from '@rlhf/tensor';

const leftKind = (r: E.Either<RlhfError, unknown>) => (E.isLeft(r) ? r.left.kind : 'right');

describe('tensor constructors', () => {
  it('wraps a typed array with its dtype and shape', () => {
    const t = tensor(new Float32Array(6), [2, 3]);
    expect(E.isRight(t) && t.right.dtype).toBe('float32');
    expect(E.isRight(t) && t.right.shape).toEqual([2, 3]);
  });
  it('rejects a shape that does not hold the data, a negative dimension and a plain array', () => {
    expect(leftKind(tensor(new Float32Array(5), [2, 3]))).toBe('shape');
    expect(leftKind(tensor(new Float32Array(0), [-1, 0]))).toBe('shape');
    expect(leftKind(tensor([1, 2, 3] as never))).toBe('shape');
  });
  it('converts plain numbers to the dtype asked for', () => {
    const t = fromArray('int32', [1.7, -2], [2]);
    expect(E.isRight(t) && Array.from(t.right.data)).toEqual([1, -2]);
    expect(E.isRight(zeros('uint8', [2, 2])) && (zeros('uint8', [2, 2]) as E.Right<{ data: Uint8Array }>).right.data.length).toBe(4);
  });
});

describe('checks', () => {
  it('names the input, the expectation and what was given', () => {
    const r = expectFloat('logits', { dtype: 'int32', shape: [2], data: new Int32Array(2) });
    expect(E.isLeft(r) && r.left.message).toMatch(/logits: expected dtype float32 or float64, got int32/);
  });
  it('detects a detached buffer through its length', () => {
    const data = new Float32Array(4);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    const r = expectFloat('x', { dtype: 'float32', shape: [4], data });
    expect(E.isLeft(r) && r.left.message).toMatch(/detached/);
  });
  it('checks shapes with wildcards', () => {
    const t = { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) } as const;
    expect(E.isRight(expectShape([-1, 3])('x', t))).toBe(true);
    expect(leftKind(expectShape([3, 2])('x', t))).toBe('shape');
  });
  it('validates output buffers by dtype and length', () => {
    expect(leftKind(outputBuffer('y', 'float32', 3, new Float64Array(3)))).toBe('shape');
    expect(leftKind(outputBuffer('y', 'float32', 3, new Float32Array(2)))).toBe('shape');
    const given = new Float32Array(3);
    expect(E.isRight(outputBuffer('y', 'float32', 3, given)) && (outputBuffer('y', 'float32', 3, given) as E.Right<unknown>).right).toBe(given);
  });
  it('treats null parameters as absent and rejects values outside the domain', () => {
    expect(positive('temperature', null, 1)).toEqual(E.right(1));
    expect(leftKind(positive('temperature', 0, 1))).toBe('param');
    expect(leftKind(positive('temperature', NaN, 1))).toBe('param');
    expect(leftKind(numberParam('gamma', 1.5, 1, (x) => x <= 1, 'in [0, 1]'))).toBe('param');
    expect(leftKind(oneOf('estimator', 'k4', 'k1', ['k1', 'k2'] as const))).toBe('param');
  });
  it('keeps the kind of errors crossing a boundary', () => {
    expect(toRlhfError(Object.assign(new Error('bad label'), { kind: 'index' })).kind).toBe('index');
    expect(toRlhfError(new RlhfError('empty', 'x')).kind).toBe('empty');
  });
});

describe('masked reductions', () => {
  const x = { dtype: 'float32', shape: [4], data: Float32Array.from([1, NaN, 3, Infinity]) } as const;
  const m = { dtype: 'uint8', shape: [4], data: Uint8Array.from([1, 0, 1, 0]) } as const;
  it('select instead of multiplying, so masked NaN and Inf never leak', () => {
    expect(maskedSum(x, m)).toBe(4);
    expect(maskedMean(x, m)).toBe(2);
    expect(maskCount(m, 4)).toBe(2);
  });
  it('gives 0 for the mean of nothing', () => {
    expect(maskedMean(x, { ...m, data: new Uint8Array(4) })).toBe(0);
  });
});

describe('constructors and checks never throw', () => {
  it('on an unknown dtype, an allocation too large, a shape with a hole, BigInt or cyclic values', () => {
    expect(leftKind(zeros('float16' as never, [2]))).toBe('shape');
    expect(leftKind(zeros('float32', [1e6, 1e6]))).toBe('shape');
    expect(leftKind(fromArray('float16' as never, [1]))).toBe('shape');
    expect(leftKind(fromArray('float32', null as never))).toBe('shape');
    // eslint-disable-next-line no-sparse-arrays
    const holed = [, 3] as unknown as number[];
    expect(leftKind(tensor(new Float32Array(3), holed))).toBe('shape');
    expect(leftKind(expectFloat('x', { dtype: 'float32', shape: holed, data: new Float32Array(3) }))).toBe('shape');
    expect(leftKind(tensor(new Float32Array(2), [2n] as never))).toBe('shape');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(leftKind(oneOf('lossType', cyclic, 'a', ['a', 'b']))).toBe('param');
    expect(leftKind(oneOf('lossType', 1n, 'a', ['a', 'b']))).toBe('param');
  });
});
