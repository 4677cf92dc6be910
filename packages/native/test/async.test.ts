import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { addon, ASYNC_MIN_ELEMENTS, cpu } from '@rlhf/native';
import { expectClose, expectSameBits, labels, logits, randomVector, requireNative, rng, t } from './helpers.js';

const raw = requireNative();

describe('async kernels on a resizable ArrayBuffer', () => {
  it('run on the calling thread, so shrinking the buffer once the call returns is safe', async () => {
    const N = 8, V = 8192; // above ASYNC_MIN_ELEMENTS
    const r = rng(7);
    const x = logits(r, N, V, 'wide');
    const buffer = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void })(
      x.byteLength,
      { maxByteLength: x.byteLength },
    );
    const resizable = new Float32Array(buffer);
    resizable.set(x);
    const want = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
    const y = labels(r, x, N, V, -100);
    raw.logprobs({ logits: x, labels: y, N, V, temperature: 1, ignoreIndex: -100, ...want });
    const got = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
    const pending = raw.async!.logprobs!({ logits: resizable, labels: y, N, V, temperature: 1, ignoreIndex: -100, ...got });
    buffer.resize(0); // on the worker this would pull the memory from under the kernel
    await pending;
    expectSameBits(got.logprobs, want.logprobs);
    expectSameBits(got.entropy, want.entropy);
  });
});

describe('async kernels run off the event loop and match the sync ones', () => {
  const N = 16, V = 50257; // above ASYNC_MIN_ELEMENTS: goes to the worker thread
  const r = rng(42);
  const x = logits(r, N, V, 'wide');
  const y = labels(r, x, N, V, -100);
  const q = Float32Array.from(x, (v) => v + r.normal());
  const g = randomVector(r, N);

  it('every row kernel', async () => {
    expect(N * V).toBeGreaterThanOrEqual(ASYNC_MIN_ELEMENTS);
    const sync = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
    raw.logprobs({ logits: x, labels: y, N, V, temperature: 0.8, ignoreIndex: -100, ...sync });
    const viaAsync = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
    const pending = raw.async!.logprobs!({ logits: x, labels: y, N, V, temperature: 0.8, ignoreIndex: -100, ...viaAsync });
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expectSameBits(viaAsync.logprobs, sync.logprobs);

    const gradSync = new Float32Array(N * V), gradAsync = new Float32Array(N * V);
    raw.logprobsBackward({ logits: x, labels: y, gradLogprobs: g, gradEntropy: g, N, V, temperature: 1, ignoreIndex: -100, gradLogits: gradSync });
    await raw.async!.logprobsBackward!({ logits: x, labels: y, gradLogprobs: g, gradEntropy: g, N, V, temperature: 1, ignoreIndex: -100, gradLogits: gradAsync });
    expectSameBits(gradAsync, gradSync);

    const lsSync = new Float32Array(N * V), lsAsync = new Float32Array(N * V);
    raw.logsoftmax({ logits: x, N, V, temperature: 1, logsoftmax: lsSync });
    await raw.async!.logsoftmax!({ logits: x, N, V, temperature: 1, logsoftmax: lsAsync });
    expectSameBits(lsAsync, lsSync);

    raw.logsoftmaxBackward({ logits: x, gradOutput: q, N, V, temperature: 1, gradLogits: lsSync });
    await raw.async!.logsoftmaxBackward!({ logits: x, gradOutput: q, N, V, temperature: 1, gradLogits: lsAsync });
    expectSameBits(lsAsync, lsSync);

    const klSync = new Float32Array(N), klAsync = new Float32Array(N);
    raw.klFull({ logitsP: x, logitsQ: q, gradKl: g, N, V, temperature: 1, kl: klSync, gradLogitsP: gradSync });
    await raw.async!.klFull!({ logitsP: x, logitsQ: q, gradKl: g, N, V, temperature: 1, kl: klAsync, gradLogitsP: gradAsync });
    expectSameBits(klAsync, klSync);
    expectSameBits(gradAsync, gradSync);
  });

  it('the event loop keeps running while a large call works', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const rows = 64;
    const big = Float32Array.from({ length: rows * V }, (_, i) => Math.sin(i));
    const yBig = Int32Array.from({ length: rows }, (_, n) => (n * 7919) % V);
    const calls = Array.from({ length: 4 }, () =>
      addon!.logprobsAsync(big, yBig, rows, V, 1, -100, new Float32Array(rows), new Float32Array(rows)),
    );
    await Promise.all(calls);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(0); // timers fired while the four calls ran on the thread pool
  });

  it('errors reject with a typed error; the facade gives Left', async () => {
    await expect(addon!.logprobsAsync(x, y, N, V, 0, -100, new Float32Array(N), new Float32Array(N))).rejects.toMatchObject({ kind: 'param' });
    const badLabels = Int32Array.from(y);
    badLabels[3] = V;
    await expect(addon!.logprobsAsync(x, badLabels, N, V, 1, -100, new Float32Array(N), new Float32Array(N))).rejects.toMatchObject({ kind: 'index' });
    const res = await cpu!.async.logprobs({ temperature: -1 })({ logits: t(x, [N, V]), labels: t(y, [N]) })();
    expect(E.isLeft(res) && res.left.kind).toBe('param');
    const ok = await cpu!.async.klFull({ withGrad: false })({ logitsP: t(x, [N, V]), logitsQ: t(q, [N, V]) })();
    expect(E.isRight(ok)).toBe(true);
    if (E.isRight(ok)) expectClose(ok.right.kl.data, ok.right.kl.data.map(() => 0), { atol: 10 });
  });

  it('float64 calls run the js kernels (sync and async)', async () => {
    const x64 = Float64Array.from(x.subarray(0, 2 * V));
    const res = await cpu!.async.logprobs()({ logits: t(x64, [2, V]), labels: t(y.subarray(0, 2), [2]) })();
    expect(E.isRight(res) && res.right.logprobs.dtype).toBe('float64');
  });
});
