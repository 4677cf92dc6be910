import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { unsafeTensor } from '@rlhf/tensor';
import { addon, cpu } from '@rlhf/native';
import { requireNative } from './helpers.js';

requireNative();
const native = addon!;

/** Runs f and returns the thrown error's kind (the test fails when nothing is thrown). */
const kindOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return String((e as { kind?: unknown }).kind);
  }
  throw new Error('expected a typed error, nothing was thrown');
};

const N = 3, V = 5;
const x = () => new Float32Array(N * V);
const y = () => Int32Array.of(0, 4, -100);
const f = (n = N) => new Float32Array(n);

describe('the addon rejects bad input with typed errors, never a crash', () => {
  it('wrong lengths are shape errors (inputs and outputs)', () => {
    expect(kindOf(() => native.logprobs(new Float32Array(N * V - 1), y(), N, V, 1, -100, f(), f()))).toBe('shape');
    expect(kindOf(() => native.logprobs(x(), Int32Array.of(0, 1), N, V, 1, -100, f(), f()))).toBe('shape');
    expect(kindOf(() => native.logprobs(x(), y(), N, V, 1, -100, f(N + 1), f()))).toBe('shape');
    expect(kindOf(() => native.logprobsBackward(x(), y(), f(), f(2), null, N, V, 1, -100, x()))).toBe('shape');
    expect(kindOf(() => native.logprobsBackward(x(), y(), f(), null, f(3 * N - 1), N, V, 1, -100, x()))).toBe('shape');
    expect(kindOf(() => native.logprobs(x(), y(), N, V, 1, -100, f(), f(), f(3 * N + 1)))).toBe('shape');
    expect(kindOf(() => native.logsoftmax(x(), N, V, 1, new Float32Array(N * V + 1)))).toBe('shape');
    expect(kindOf(() => native.logsoftmaxBackward(x(), f(N), N, V, 1, x()))).toBe('shape');
    expect(kindOf(() => native.klFull(x(), x(), null, null, N, V, 1, f(), f(N), null))).toBe('shape');
    expect(kindOf(() => native.klFull(x(), x(), null, f(5 * N - 1), N, V, 1, f(), null, null))).toBe('shape');
    expect(kindOf(() => native.klFull(x(), x(), null, null, N, V, 1, f(), null, f(4 * N)))).toBe('shape');
    expect(kindOf(() => native.pairwise(f(4), f(3), null, 4, 0, 0, f(4), f(4)))).toBe('shape');
    expect(kindOf(() => native.ranking(f(6), new Int32Array(5), 2, 3, f(6)))).toBe('shape');
    expect(kindOf(() => native.dpo(f(2), f(2), f(2), f(1), 2, 0.1, 0, 0, f(2), f(2), f(2), f(2)))).toBe('shape');
  });

  it('wrong array types and sizes are shape errors', () => {
    expect(kindOf(() => native.logprobs(new Float64Array(N * V) as unknown as Float32Array, y(), N, V, 1, -100, f(), f()))).toBe('shape');
    expect(kindOf(() => native.logprobs(x(), new Float32Array(N) as unknown as Int32Array, N, V, 1, -100, f(), f()))).toBe('shape');
    expect(kindOf(() => native.logsoftmax([1, 2] as unknown as Float32Array, 1, 2, 1, f(2)))).toBe('shape');
    expect(kindOf(() => native.logsoftmax(x(), -1, V, 1, x()))).toBe('shape');
    expect(kindOf(() => native.logsoftmax(x(), 1.5, V, 1, x()))).toBe('shape');
    expect(kindOf(() => native.logsoftmax(new Float32Array(0), 0, 0, 1, new Float32Array(0)))).toBe('shape'); // V < 1
  });

  it('labels outside [0, V) that are not ignoreIndex, and ranks outside [0, K) that are not −1, are index errors', () => {
    expect(kindOf(() => native.logprobs(x(), Int32Array.of(0, V, 1), N, V, 1, -100, f(), f()))).toBe('index');
    expect(kindOf(() => native.logprobs(x(), Int32Array.of(0, -1, 1), N, V, 1, -100, f(), f()))).toBe('index');
    expect(kindOf(() => native.logprobsBackward(x(), Int32Array.of(0, 1, 99), f(), null, null, N, V, 1, -100, x()))).toBe('index');
    expect(kindOf(() => native.ranking(f(4), Int32Array.of(0, 2, 1, 0), 2, 2, f(4)))).toBe('index');
    expect(kindOf(() => native.ranking(f(4), Int32Array.of(0, -2, 1, 0), 2, 2, f(4)))).toBe('index');
  });

  it('parameters outside their domain are param errors', () => {
    for (const T of [0, -1, NaN, Infinity, 1e-46 /* rounds to 0 in float32 */])
      expect(kindOf(() => native.logprobs(x(), y(), N, V, T, -100, f(), f())), `T=${T}`).toBe('param');
    expect(kindOf(() => native.klFull(x(), x(), null, null, N, V, 0, f(), null, null))).toBe('param');
    expect(kindOf(() => native.pairwise(f(2), f(2), null, 2, 0.5, 0, f(2), f(2)))).toBe('param');
    expect(kindOf(() => native.pairwise(f(2), f(2), null, 2, 0, -1, f(2), f(2)))).toBe('param');
    expect(kindOf(() => native.dpo(f(2), f(2), f(2), f(2), 2, 0, 0, 0, f(2), f(2), f(2), f(2)))).toBe('param');
    expect(kindOf(() => native.dpo(f(2), f(2), f(2), f(2), 2, 0.1, 3, 0, f(2), f(2), f(2), f(2)))).toBe('param');
    expect(kindOf(() => native.forceIsa('sse9' as never))).toBe('param');
    expect(kindOf(() => native.setNumThreads(1.5))).toBe('param');
  });

  it('parameters reach the kernels as doubles, ignoreIndex as int64 (C ABI 2)', () => {
    // An ignoreIndex outside int32 equals no label, not even INT32_MIN (ABI 1 mapped it to INT32_MIN).
    for (const ignore of [2 ** 31, -(2 ** 31) - 1, 2 ** 40, -1e300])
      expect(kindOf(() => native.logprobs(x(), Int32Array.of(0, -(2 ** 31), 1), N, V, 1, ignore, f(), f())), `${ignore}`).toBe('index');
    // 1/T or log2(e)/T outside the normal floats: the float32 kernels cannot scale by it.
    for (const T of [3e-39, 1e300]) expect(kindOf(() => native.logprobs(x(), y(), N, V, T, -100, f(), f())), `T=${T}`).toBe('param');
    // β = 0.01 is below 0.01 in float32: with h = 100 the hinge is hit exactly, where the gradient is 0.
    const g = f(1);
    native.dpo(Float32Array.of(100), f(1), f(1), f(1), 1, 0.01, 1, 0, g, f(1), f(1), f(1));
    expect(g[0]).toBe(0);
    // A smoothing just below 0.5 (0.5 in float32) is valid.
    expect(() => native.pairwise(f(2), f(2), null, 2, 0.49999999999, 0, f(2), f(2))).not.toThrow();
  });

  it('ranking with K = 0 has no pair: an empty error, as on js', () => {
    expect(native.ranking(f(0), new Int32Array(0), 2, 0, f(0)).pairs).toBe(0); // the facade words the error
    const res = cpu!.ranking()({ rewards: unsafeTensor('float32', [2, 0], f(0)), ranks: unsafeTensor('int32', [2, 0], new Int32Array(0)) });
    expect(E.isLeft(res) && res.left.kind).toBe('empty');
  });

  it('an output overlapping the labels cannot make the kernel index with a changed label', () => {
    // gradLogits' first row covers the labels: writing it changes them under the kernel.
    const n = 4, v = 64;
    const out = new Float32Array(n * v);
    const labels = new Int32Array(out.buffer, 40 * 4, n).fill(1);
    const logits = Float32Array.from({ length: n * v }, (_, i) => Math.sin(i));
    expect(kindOf(() => native.logprobsBackward(logits, labels, new Float32Array(n).fill(1), null, null, n, v, 1, -100, out))).toBe('index');
  });

  it('an empty batch is an empty error', () => {
    expect(kindOf(() => native.pairwise(f(0), f(0), null, 0, 0, 0, f(0), f(0)))).toBe('empty');
    expect(kindOf(() => native.dpo(f(0), f(0), f(0), f(0), 0, 0.1, 0, 0, f(0), f(0), f(0), f(0)))).toBe('empty');
  });

  it('nothing is written when the arguments are bad', () => {
    const out = f().fill(7);
    kindOf(() => native.logprobs(x(), Int32Array.of(0, 1, V), N, V, 1, -100, out, f()));
    expect(Array.from(out)).toEqual([7, 7, 7]);
  });

  it('a detached buffer (transferred away) is a shape error, sync and async', async () => {
    const logits = x();
    structuredClone(logits.buffer, { transfer: [logits.buffer] });
    expect(logits.length).toBe(0); // a view over a detached buffer has no elements
    expect(kindOf(() => native.logprobs(logits, y(), N, V, 1, -100, f(), f()))).toBe('shape');
    const out = f();
    structuredClone(out.buffer, { transfer: [out.buffer] });
    expect(kindOf(() => native.logprobs(x(), y(), N, V, 1, -100, out, f()))).toBe('shape');
    await expect(native.logprobsAsync(logits, y(), N, V, 1, -100, f(), f())).rejects.toMatchObject({ kind: 'shape' });
  });

  it('through the facade, native errors become Left(RlhfError) of the same kind', () => {
    // Labels the facade did not see (a tensor whose data changed after construction is still re-checked natively).
    const labels = unsafeTensor('int32', [N], y());
    const logits = unsafeTensor('float32', [N, V], x());
    const res = cpu!.logprobs()({ logits, labels: { ...labels, data: Int32Array.of(0, 1, 2) } });
    expect(E.isRight(res)).toBe(true);
    const bad = cpu!.logprobs({ temperature: 0 })({ logits, labels });
    expect(E.isLeft(bad) && bad.left.kind).toBe('param');
    const detached = x();
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const gone = cpu!.logprobs()({ logits: unsafeTensor('float32', [N, V], detached), labels });
    expect(E.isLeft(gone) && gone.left.kind).toBe('shape');
  });
});

describe('index checks through the cpu backend (the facade leaves float32 scans to the C kernels)', () => {
  const labels = unsafeTensor('int32', [N], Int32Array.of(0, V, -100));
  const ranks = unsafeTensor('int32', [2, 2], Int32Array.of(0, 2, 1, 0));
  it('float32: the native check gives the index error', () => {
    const lp = cpu!.logprobs()({ logits: unsafeTensor('float32', [N, V], x()), labels });
    expect(E.isLeft(lp) && lp.left.kind).toBe('index');
    const bw = cpu!.logprobsBackward()({ logits: unsafeTensor('float32', [N, V], x()), labels, gradLogprobs: unsafeTensor('float32', [N], f()) });
    expect(E.isLeft(bw) && bw.left.kind).toBe('index');
    const rk = cpu!.ranking()({ rewards: unsafeTensor('float32', [2, 2], f(4)), ranks });
    expect(E.isLeft(rk) && rk.left.kind).toBe('index');
  });
  it('float64 runs the js kernels, so the facade still checks', () => {
    const lp = cpu!.logprobs()({ logits: unsafeTensor('float64', [N, V], new Float64Array(N * V)), labels });
    expect(E.isLeft(lp) && lp.left.kind).toBe('index');
    const rk = cpu!.ranking()({ rewards: unsafeTensor('float64', [2, 2], new Float64Array(4)), ranks });
    expect(E.isLeft(rk) && rk.left.kind).toBe('index');
  });
});
