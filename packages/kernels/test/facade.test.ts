// The validation every backend shares (facade.ts): what it refuses, and that it never throws.
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { js, resolveBackend } from '@rlhf/kernels';
import { unsafeTensor, type RlhfError } from '@rlhf/tensor';

const kind = (r: E.Either<RlhfError, unknown>) => (E.isLeft(r) ? r.left.kind : 'right');
const f32 = (shape: number[], data = new Float32Array(shape.reduce((a, b) => a * b, 1))) => unsafeTensor('float32', shape, data);
const logits = () => f32([2, 3], Float32Array.of(0.5, -1, 2, 0, 1, -2));
const labels = () => unsafeTensor('int32', [2], Int32Array.of(1, 2));

describe('the facade', () => {
  it('takes only true or false for inPlace and withGrad: a string never overwrites the logits', () => {
    const x = logits();
    const before = Array.from(x.data);
    for (const inPlace of ['false', 'no', 1]) {
      const r = js.logprobsBackward({ inPlace } as never)({ logits: x, labels: labels(), gradLogprobs: f32([2], Float32Array.of(1, 1)) });
      expect(kind(r), String(inPlace)).toBe('param');
    }
    expect(Array.from(x.data)).toEqual(before);
    expect(kind(js.klFull({ withGrad: 0 } as never)({ logitsP: x, logitsQ: x }))).toBe('param');
  });

  it('refuses a temperature whose 1/T overflows (it gave NaN everywhere)', () => {
    expect(kind(js.logsoftmax({ temperature: 1e-310 })({ logits: logits() }))).toBe('param');
    expect(kind(js.logsoftmax({ temperature: 1e-300 })({ logits: logits() }))).toBe('right');
  });

  it('refuses a backend that is neither a name nor a Kernels object', () => {
    for (const b of [5, true, {}, [], { name: 'js' }]) expect(kind(resolveBackend(b as never)), JSON.stringify(b)).toBe('param');
    expect(kind(resolveBackend(js))).toBe('right');
  });

  it('returns a Left, sync and async, where reading an argument throws', async () => {
    const throwing = Object.defineProperty({}, 'temperature', { get: () => { throw new Error('getter'); } });
    expect(kind(js.logsoftmax(throwing)({ logits: logits() }))).toBe('shape');
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(kind(js.logsoftmax()(proxy as never))).toBe('shape');
    expect(kind(js.logsoftmax({}, proxy as never)({ logits: logits() }))).toBe('shape');
    expect(kind(await js.async.logsoftmax(throwing)({ logits: logits() })())).toBe('shape');
  });

  it('a ranking batch without a pair fails before its gradient is written; an out-of-range rank is still an index error', () => {
    const rewards = f32([2, 2], Float32Array.of(1, 2, 3, 4));
    const grad = new Float32Array(4).fill(7);
    const tied = unsafeTensor('int32', [2, 2], Int32Array.of(0, 0, -1, 1));
    expect(kind(js.ranking(undefined, { grad })({ rewards, ranks: tied }))).toBe('empty');
    expect(Array.from(grad)).toEqual([7, 7, 7, 7]);
    expect(kind(js.ranking()({ rewards, ranks: unsafeTensor('int32', [2, 2], Int32Array.of(0, 0, -5, 1)) }))).toBe('index');
  });

  it('an async task checks its inputs when it runs, not when it is built', async () => {
    // Built, then its logits transferred away (detached) and its output replaced by a shorter array.
    const x = logits();
    const task = js.async.logsoftmax()({ logits: x });
    structuredClone(x.data.buffer, { transfer: [x.data.buffer as ArrayBuffer] });
    expect(kind(await task())).toBe('shape');
    const ok = js.async.logsoftmax()({ logits: logits() });
    expect(kind(await ok())).toBe('right');
    // A task runs again with what its arguments hold then.
    const again = logits();
    const twice = js.async.logsoftmax()({ logits: again });
    expect(kind(await twice())).toBe('right');
    structuredClone(again.data.buffer, { transfer: [again.data.buffer as ArrayBuffer] });
    expect(kind(await twice())).toBe('shape');
  });

  it('refuses outputs that share memory with an input or with each other, except where an op writes in place', () => {
    // out.logprobs over the labels: the kernel would read labels it had already overwritten.
    const y = labels();
    const over = new Float32Array(y.data.buffer);
    expect(kind(js.logprobs({}, { logprobs: over })({ logits: logits(), labels: y }))).toBe('shape');
    const shared = new Float32Array(4);
    expect(kind(js.logprobs({}, { logprobs: shared.subarray(0, 2), entropy: shared.subarray(1, 3) })({ logits: logits(), labels: labels() }))).toBe('shape');
    // ranking's gradient over the rewards, pairwise's over the chosen scores, kl over gradKl: wrong results before.
    const rewards = f32([1, 3], Float32Array.of(1, 2, 3));
    const ranks = unsafeTensor('int32', [1, 3], Int32Array.of(0, 1, 2));
    expect(kind(js.ranking(undefined, { grad: rewards.data })({ rewards, ranks }))).toBe('shape');
    const chosen = f32([2], Float32Array.of(1, 2));
    expect(kind(js.pairwise({}, { gradChosen: chosen.data })({ chosen, rejected: f32([2]) }))).toBe('shape');
    const gradKl = f32([2], Float32Array.of(1, 1));
    expect(kind(js.klFull({}, { kl: gradKl.data })({ logitsP: logits(), logitsQ: logits(), gradKl }))).toBe('shape');
    // In place, exactly: allowed where the op supports it.
    const x = logits();
    expect(kind(js.logsoftmax({}, { logsoftmax: x.data })({ logits: x }))).toBe('right');
    expect(kind(js.logsoftmax({}, { logsoftmax: x.data.subarray(0) as Float32Array })({ logits: x }))).toBe('right');
    const pc = f32([1], Float32Array.of(2));
    const z = () => f32([1], Float32Array.of(0));
    const d = js.dpo({}, { gradPolicyChosen: pc.data })({ policyChosen: pc, policyRejected: z(), refChosen: z(), refRejected: z() });
    expect(kind(d)).toBe('right');
  });
});
