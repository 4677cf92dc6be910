import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { backend, backendStatus, js, type Kernels } from '@rlhf/kernels';
import { tensor, type FloatTensor, type RlhfError } from '@rlhf/tensor';
import { loadCases, runCase } from '@rlhf/conformance';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import '@rlhf/native';
import { cudaDevice, cudaUnavailableReason, makeCudaRaw } from '../src/cuda.js';
import type { CudaBinding } from '../src/device.js';

const status = backendStatus().find((s) => s.name === 'cuda')!;
const available = status.available;
if (!available) console.log(`[cuda tests skipped] the cuda backend is unavailable: ${status.reason}`);

describe('cuda backend status', () => {
  it('is registered, or says why not', () => {
    if (available) {
      expect(E.isRight(backend('cuda'))).toBe(true);
      expect(cudaDevice()!.name.length).toBeGreaterThan(0);
    } else {
      expect(status.reason!.length).toBeGreaterThan(10);
      expect(cudaUnavailableReason()).toBe(status.reason);
      const k = backend('cuda');
      expect(E.isLeft(k) && k.left.kind).toBe('param');
      expect(E.isLeft(k) && k.left.message).toContain(status.reason!);
    }
  });
});

describe('the cuda backend on a binding that fails to allocate (no GPU needed)', () => {
  it('a failed scratch allocation leaves the backend usable', () => {
    let next = 0x1000n;
    const fake = {
      malloc: (bytes: number) => {
        if (bytes > 1 << 20) throw new Error('cudaMalloc: cudaErrorMemoryAllocation');
        return (next += 0x100000n);
      },
      free: () => {},
      upload: () => {},
      download: (host: ArrayBufferView) => new Uint8Array(host.buffer, host.byteOffset, host.byteLength).fill(0),
      streamCreate: () => 1n,
      logsoftmax: () => {},
    } as unknown as CudaBinding;
    const raw = makeCudaRaw(fake);
    const call = (N: number, V: number) => () =>
      raw.logsoftmax({ logits: new Float32Array(N * V), N, V, temperature: 1, logsoftmax: new Float32Array(N * V) });
    expect(call(2, 8)).not.toThrow();
    expect(call(1024, 1024)).toThrow(/cudaErrorMemoryAllocation/);
    expect(call(2, 8)).not.toThrow(); // it was "this device buffer was freed" on every later call
  });
});

// ---- on a GPU ------------------------------------------------------------------------------------

const rng = (seed: number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const randomFloats = (n: number, r: () => number, scale = 3): Float32Array =>
  Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);

const right = <A>(e: E.Either<RlhfError, A>): A => {
  if (E.isLeft(e)) throw new Error(`${e.left.kind}: ${e.left.message}`);
  return e.right;
};

/** max |a − b| / (atol + rtol·|b|) over the elements: ≤ 1 passes. */
const scaledError = (a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-4, atol = 2e-5): number => {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(b[i]!)) {
      if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) return Infinity;
      continue;
    }
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!)));
  }
  return worst;
};

const f32 = (data: Float32Array, shape: number[]) => right(tensor(data, shape)) as FloatTensor;
const i32 = (data: Int32Array, shape: number[]) => right(tensor(data, shape));

describe.skipIf(!available)('cuda kernels against js', () => {
  const cuda = (): Kernels => right(backend('cuda'));

  // V = 1, odd V (scalar path), warp rows, block rows, a split 128k row, -inf logits, ignored rows.
  const shapes: [number, number][] = [[3, 1], [5, 7], [9, 1000], [4, 1025], [3, 4099], [2, 32000], [2, 128256]];
  it.each(shapes)('logprobs, backward (in place too), logsoftmax (+backward), kl.full at N=%i V=%i', (N, V) => {
    const r = rng(N * 7919 + V);
    const logits = randomFloats(N * V, r);
    for (let i = 0; i < logits.length; i += 97) logits[i] = -Infinity;
    const labels = Int32Array.from({ length: N }, (_, n) => (n === 1 ? -100 : Math.floor(r() * V)));
    for (let n = 0; n < N; n++) if (labels[n]! >= 0) logits[n * V + labels[n]!] = 1;
    const params = { temperature: 0.8, ignoreIndex: -100 };
    const inputs = { logits: f32(logits, [N, V]), labels: i32(labels, [N]) };
    const want = right(js.logprobs(params)(inputs));
    const got = right(cuda().logprobs(params)(inputs));
    expect(scaledError(got.logprobs.data, want.logprobs.data)).toBeLessThanOrEqual(1);
    expect(scaledError(got.entropy.data, want.entropy.data)).toBeLessThanOrEqual(1);

    const bwd = { ...inputs, gradLogprobs: f32(randomFloats(N, r), [N]), gradEntropy: f32(randomFloats(N, r), [N]) };
    const gWant = right(js.logprobsBackward(params)(bwd));
    const gGot = right(cuda().logprobsBackward(params)(bwd));
    expect(scaledError(gGot.gradLogits.data, gWant.gradLogits.data)).toBeLessThanOrEqual(1);
    for (const rowStats of [got.rowStats, want.rowStats]) {  // its own forward's statistics, and js's
      const fromStats = right(cuda().logprobsBackward(params)({ ...bwd, rowStats }));
      expect(scaledError(fromStats.gradLogits.data, gWant.gradLogits.data)).toBeLessThanOrEqual(1);
    }
    const copy = f32(Float32Array.from(logits), [N, V]);
    const inPlace = right(cuda().logprobsBackward({ ...params, inPlace: true })({ ...bwd, logits: copy }));
    expect(inPlace.gradLogits.data).toBe(copy.data);
    expect(scaledError(inPlace.gradLogits.data, gWant.gradLogits.data)).toBeLessThanOrEqual(1);

    const lsm = right(cuda().logsoftmax(params)({ logits: inputs.logits }));
    expect(scaledError(lsm.logsoftmax.data, right(js.logsoftmax(params)({ logits: inputs.logits })).logsoftmax.data)).toBeLessThanOrEqual(1);
    const gOut = f32(randomFloats(N * V, r), [N, V]);
    const lb = right(cuda().logsoftmaxBackward(params)({ logits: inputs.logits, gradOutput: gOut }));
    const lbWant = right(js.logsoftmaxBackward(params)({ logits: inputs.logits, gradOutput: gOut }));
    expect(scaledError(lb.gradLogits.data, lbWant.gradLogits.data)).toBeLessThanOrEqual(1);

    const q = f32(randomFloats(N * V, r), [N, V]);
    const klIn = { logitsP: inputs.logits, logitsQ: q, gradKl: f32(randomFloats(N, r), [N]) };
    const kl = right(cuda().klFull(params)(klIn));
    const klWant = right(js.klFull(params)(klIn));
    expect(scaledError(kl.kl.data, klWant.kl.data, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    expect(scaledError(kl.gradLogitsP!.data, klWant.gradLogitsP!.data)).toBeLessThanOrEqual(1);
    for (const rowStats of [kl.rowStats, klWant.rowStats]) {  // its own forward's statistics, and js's
      const fromStats = right(cuda().klFull(params)({ ...klIn, rowStats }));
      expect(Array.from(fromStats.kl.data)).toEqual(Array.from(rowStats.data.filter((_, i) => i % 5 === 4)));
      expect(scaledError(fromStats.gradLogitsP!.data, klWant.gradLogitsP!.data)).toBeLessThanOrEqual(1);
    }
  });

  it('preference losses match js', () => {
    const r = rng(5);
    for (const B of [1, 33, 700]) {
      const v = () => f32(randomFloats(B, r), [B]);
      const pw = { chosen: v(), rejected: v(), margin: v() };
      const p1 = right(cuda().pairwise({ labelSmoothing: 0.1, centerCoef: 0.01 })(pw));
      const p2 = right(js.pairwise({ labelSmoothing: 0.1, centerCoef: 0.01 })(pw));
      expect(p1.loss).toBeCloseTo(p2.loss, 6);
      expect(p1.accuracy).toBe(p2.accuracy);
      expect(scaledError(p1.gradChosen.data, p2.gradChosen.data)).toBeLessThanOrEqual(1);
      for (const lossType of ['sigmoid', 'hinge', 'ipo'] as const) {
        const d = { policyChosen: v(), policyRejected: v(), refChosen: v(), refRejected: v() };
        const d1 = right(cuda().dpo({ beta: 0.5, lossType })(d));
        const d2 = right(js.dpo({ beta: 0.5, lossType })(d));
        expect(d1.loss).toBeCloseTo(d2.loss, 6);
        expect(d1.accuracy).toBe(d2.accuracy);
        expect(scaledError(d1.gradPolicyChosen.data, d2.gradPolicyChosen.data)).toBeLessThanOrEqual(1);
        expect(scaledError(d1.rewardsRejected.data, d2.rewardsRejected.data)).toBeLessThanOrEqual(1);
      }
      const K = 5;
      const ranks = Int32Array.from({ length: B * K }, () => (r() < 0.1 ? -1 : Math.floor(r() * K)));
      const rewards = randomFloats(B * K, r);
      ranks.forEach((rank, i) => rank < 0 && (rewards[i] = NaN)); // padded slots never leak
      const rk = { rewards: f32(rewards, [B, K]), ranks: i32(ranks, [B, K]) };
      const r1 = cuda().ranking()(rk);
      const r2 = js.ranking()(rk);
      expect(E.isRight(r1)).toBe(E.isRight(r2));
      if (E.isRight(r1) && E.isRight(r2)) {
        expect(r1.right.loss).toBeCloseTo(r2.right.loss, 6);
        expect(r1.right.pairs).toBe(r2.right.pairs);
        expect(scaledError(r1.right.grad.data, r2.right.grad.data)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('passes every visible conformance case', () => {
    const dir = fileURLToPath(new URL('../../conformance/cases/', import.meta.url));
    const cases = loadCases(readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => dir + f));
    const failures = cases
      .map((c) => ({ c, o: runCase(c, 'cuda') }))
      .filter(({ o }) => o.status === 'fail')
      .map(({ c, o }) => `${c.name}: ${JSON.stringify(o)}`);
    expect(failures).toEqual([]);
  });
});

describe.skipIf(!available)('device buffers', () => {
  const dev = () => cudaDevice()!;

  it('round-trips float32 and int32 through the device, on a stream', () => {
    const stream = right(dev().createStream());
    const x = f32(randomFloats(1000, rng(1)), [10, 100]);
    const d = right(dev().upload(x, stream));
    expect(right(dev().download(d, stream)).data).toEqual(x.data);
    const y = i32(Int32Array.from({ length: 7 }, (_, i) => i - 3), [7]);
    expect(right(dev().download(right(dev().upload(y)))).data).toEqual(y.data);
    d.buffer.free();
    expect(d.buffer.freed).toBe(true);
    expect(E.isLeft(dev().download(d))).toBe(true);
    stream.destroy();
  });

  it('runs kernels on device tensors, keeping the logits on the GPU between steps', () => {
    const N = 6;
    const V = 3000;
    const r = rng(2);
    const logits = f32(randomFloats(N * V, r), [N, V]);
    const labels = i32(Int32Array.from({ length: N }, () => Math.floor(r() * V)), [N]);
    const dl = right(dev().upload(logits));
    const dy = right(dev().upload(labels));
    const fwd = right(dev().kernels.logprobs({ temperature: 1.3 })({ logits: dl, labels: dy }));
    const want = right(js.logprobs({ temperature: 1.3 })({ logits, labels }));
    expect(scaledError(right(dev().download(fwd.logprobs)).data, want.logprobs.data)).toBeLessThanOrEqual(1);
    const ones = right(dev().upload(f32(new Float32Array(N).fill(1), [N])));
    const g = right(dev().kernels.logprobsBackward({ temperature: 1.3, inPlace: true })({ logits: dl, labels: dy, gradLogprobs: ones }));
    expect(g.gradLogits).toBe(dl);
    const gWant = right(js.logprobsBackward({ temperature: 1.3 })({ logits, labels, gradLogprobs: f32(new Float32Array(N).fill(1), [N]) }));
    expect(scaledError(right(dev().download(g.gradLogits)).data, gWant.gradLogits.data)).toBeLessThanOrEqual(1);
  });

  it("takes the forward's rowStats back on the device: the logprobs backward and the KL gradient", () => {
    const [N, V] = [5, 4099];  // an odd V: the rows are not 16-byte aligned
    const r = rng(4);
    const params = { temperature: 0.7 };
    const logits = f32(randomFloats(N * V, r), [N, V]);
    const labels = i32(Int32Array.from({ length: N }, () => Math.floor(r() * V)), [N]);
    const gradLogprobs = f32(randomFloats(N, r), [N]);
    const gradEntropy = f32(randomFloats(N, r), [N]);
    const dl = right(dev().upload(logits));
    const dy = right(dev().upload(labels));
    const dgl = right(dev().upload(gradLogprobs));
    const dgh = right(dev().upload(gradEntropy));
    const fwd = right(dev().kernels.logprobs(params)({ logits: dl, labels: dy }));
    expect(fwd.rowStats.shape).toEqual([N, 3]);
    const bwdIn = { logits: dl, labels: dy, gradLogprobs: dgl, gradEntropy: dgh, rowStats: fwd.rowStats };
    const want = right(js.logprobsBackward(params)({ logits, labels, gradLogprobs, gradEntropy })).gradLogits.data;
    const g = right(dev().kernels.logprobsBackward(params)(bwdIn));
    expect(scaledError(right(dev().download(g.gradLogits)).data, want)).toBeLessThanOrEqual(1);
    // The statistics are really read: with s (the log-sum-exp's part) one larger, every p is e times smaller.
    const shifted = (stats: typeof fwd.rowStats, width: number, column: number) => {
      const host = right(dev().download(stats));
      const data = Float32Array.from(host.data, (x, i) => (i % width === column ? x + 1 : x));
      return right(dev().upload(f32(data, [N, width])));
    };
    const off = right(dev().kernels.logprobsBackward(params)({ ...bwdIn, rowStats: shifted(fwd.rowStats, 3, 1) }));
    expect(scaledError(right(dev().download(off.gradLogits)).data, want)).toBeGreaterThan(1);
    const gInPlace = right(dev().kernels.logprobsBackward({ ...params, inPlace: true })(bwdIn));
    expect(gInPlace.gradLogits).toBe(dl);
    expect(scaledError(right(dev().download(gInPlace.gradLogits)).data, want)).toBeLessThanOrEqual(1);

    const q = f32(randomFloats(N * V, r), [N, V]);
    const gradKl = f32(randomFloats(N, r), [N]);
    const dp = right(dev().upload(logits));
    const dq = right(dev().upload(q));
    const dgk = right(dev().upload(gradKl));
    const klWant = right(js.klFull(params)({ logitsP: logits, logitsQ: q, gradKl }));
    const value = right(dev().kernels.klFull({ ...params, withGrad: false })({ logitsP: dp, logitsQ: dq }));
    expect(value.gradLogitsP).toBeUndefined();
    expect(scaledError(right(dev().download(value.kl)).data, klWant.kl.data, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    const grad = right(dev().kernels.klFull(params)({ logitsP: dp, logitsQ: dq, gradKl: dgk, rowStats: value.rowStats }));
    expect(right(dev().download(grad.kl)).data).toEqual(right(dev().download(value.kl)).data);
    expect(scaledError(right(dev().download(grad.gradLogitsP!)).data, klWant.gradLogitsP!.data)).toBeLessThanOrEqual(1);
    const klOff = right(dev().kernels.klFull(params)({ logitsP: dp, logitsQ: dq, gradKl: dgk, rowStats: shifted(value.rowStats, 5, 3) }));
    expect(scaledError(right(dev().download(klOff.gradLogitsP!)).data, klWant.gradLogitsP!.data)).toBeGreaterThan(1);
    const wrong = dev().kernels.logprobsBackward(params)({ ...bwdIn, rowStats: value.rowStats });  // [N, 5], not [N, 3]
    expect(E.isLeft(wrong) && wrong.left.kind).toBe('shape');
  });

  it('reports a bad label found on the device as an index error at download, then recovers', () => {
    const logits = right(dev().upload(f32(randomFloats(4 * 50, rng(3)), [4, 50])));
    const labels = right(dev().upload(i32(Int32Array.from([1, 2, 50, 3]), [4])));
    const out = right(dev().kernels.logprobs()({ logits, labels }));
    const got = dev().download(out.logprobs);
    expect(E.isLeft(got) && got.left.kind).toBe('index');
    expect(E.isRight(dev().synchronize())).toBe(true);
  });

  it('rejects host-side mistakes with typed errors', () => {
    const logits = right(dev().upload(f32(new Float32Array(12).fill(0.5), [3, 4])));
    const labels = right(dev().upload(i32(new Int32Array(2), [2])));
    const bad = dev().kernels.logprobs()({ logits, labels });
    expect(E.isLeft(bad) && bad.left.kind).toBe('shape');
    const goodLabels = right(dev().upload(i32(new Int32Array(3), [3])));
    const t0 = dev().kernels.logprobs({ temperature: 0 })({ logits, labels: goodLabels });
    expect(E.isLeft(t0) && t0.left.kind).toBe('param');
    // 1/T or log2(e)/T outside the normal floats: the kernels cannot scale by it (it gave NaN before).
    for (const temperature of [1e-40, 3e-39, 1e300]) {
      const tiny = dev().kernels.logprobs({ temperature })({ logits, labels: goodLabels });
      expect(E.isLeft(tiny) && tiny.left.kind, `T=${temperature}`).toBe('param');
    }
    // null params, outputs or inputs: as on the host, never a TypeError
    const nothing = dev().kernels.logprobs(null as never, null as never)(null as never);
    expect(E.isLeft(nothing) && nothing.left.kind).toBe('shape');
    expect(E.isRight(dev().kernels.logprobs(null as never, null as never)({ logits, labels: goodLabels }))).toBe(true);
    const noPairs = dev().kernels.pairwise()(null as never);
    expect(E.isLeft(noPairs) && noPairs.left.kind).toBe('shape');
    // inPlace and withGrad take only booleans, as on the host: 'false' must not overwrite the logits
    const ones = right(dev().upload(f32(new Float32Array(3).fill(1), [3])));
    const truthy = dev().kernels.logprobsBackward({ inPlace: 'false' } as never)({ logits, labels: goodLabels, gradLogprobs: ones });
    expect(E.isLeft(truthy) && truthy.left.kind).toBe('param');
    expect(Array.from(right(dev().download(logits)).data)).toEqual(new Array(12).fill(0.5));
    const noGrad = dev().kernels.klFull({ withGrad: 0 } as never)({ logitsP: logits, logitsQ: logits });
    expect(E.isLeft(noGrad) && noGrad.left.kind).toBe('param');
  });

  it('uploads only a tensor whose array matches its shape and dtype, and downloads only into an array of its dtype', () => {
    const short = dev().upload({ dtype: 'float32', shape: [8], data: Float32Array.of(1, 2) });
    expect(E.isLeft(short) && short.left.kind).toBe('shape');
    const mislabelled = dev().upload({ dtype: 'int32', shape: [2], data: Float32Array.of(1, 2) } as never);
    expect(E.isLeft(mislabelled) && mislabelled.left.kind).toBe('shape');
    const long = dev().upload({ dtype: 'float32', shape: [2], data: new Float64Array(2) } as never);
    expect(E.isLeft(long) && long.left.kind).toBe('shape');
    expect(E.isLeft(dev().upload(null as never))).toBe(true);
    const noShape = dev().alloc('float32', undefined as never);
    expect(E.isLeft(noShape) && noShape.left.kind).toBe('shape');
    const d = right(dev().upload(f32(Float32Array.of(1, 2, 3), [3])));
    for (const out of [new Int32Array(3), new Uint8Array(3), new Float64Array(3)]) {
      const got = dev().download(d, undefined, out as never);
      expect(E.isLeft(got) && got.left.kind, out.constructor.name).toBe('shape');
    }
    // a view on a SharedArrayBuffer is host memory like any other
    const shared = new Float32Array(new SharedArrayBuffer(12));
    shared.set([4, 5, 6]);
    expect(Array.from(right(dev().download(right(dev().upload(f32(shared, [3]))))).data)).toEqual([4, 5, 6]);
  });

  it('never throws: a throwing getter or a revoked Proxy among the arguments of any device op is a Left', () => {
    const logits = right(dev().upload(f32(new Float32Array(6).fill(0.5), [2, 3])));
    const labels = right(dev().upload(i32(new Int32Array(2), [2])));
    const boom = (o: object, key: string) => Object.defineProperty({ ...o }, key, { get: () => { throw new Error('boom'); } });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const attempts: Record<string, () => E.Either<RlhfError, unknown>> = {
      'input getter': () => dev().kernels.logprobs()(boom({ logits }, 'labels') as never),
      'param getter': () => dev().kernels.logprobs(boom({}, 'temperature') as never)({ logits, labels }),
      'out getter': () => dev().kernels.logprobs({}, boom({}, 'entropy') as never)({ logits, labels }),
      'tensor.buffer getter': () => dev().kernels.logsoftmax()({ logits: boom(logits, 'buffer') as never }),
      'revoked inputs': () => dev().kernels.logsoftmax()(proxy as never),
      'upload of a revoked tensor': () => dev().upload(proxy as never),
      'upload with a throwing data getter': () => dev().upload(boom({ dtype: 'float32', shape: [1] }, 'data') as never),
      'download of a revoked tensor': () => dev().download(proxy as never),
      'alloc with a revoked shape': () => dev().alloc('float32', proxy as never),
    };
    for (const [what, f] of Object.entries(attempts)) {
      let r: E.Either<RlhfError, unknown> | undefined;
      expect(() => (r = f()), what).not.toThrow();
      expect(E.isLeft(r!), what).toBe(true);
    }
  });

  it('checks each argument once: a getter cannot show the check one buffer and the kernel another', () => {
    const big = right(dev().upload(f32(new Float32Array(4 * 1000).fill(0.25), [4, 1000])));
    const small = right(dev().alloc('float32', [1]));
    let reads = 0;
    const shifty = { dtype: 'float32', shape: [4, 1000], get buffer() { return ++reads > 1 ? small.buffer : big.buffer; } };
    const r = dev().kernels.logsoftmax()({ logits: shifty as never });
    expect(reads).toBe(1);
    expect(E.isRight(r)).toBe(true);
    // A buffer's size is the allocation's: it cannot be enlarged by assignment.
    expect(() => { (small.buffer as { bytes: number }).bytes = 1 << 20; }).toThrow();
    expect(() => Object.defineProperty(small.buffer, 'bytes', { value: 1 << 20 })).toThrow();
    expect(() => Object.defineProperty(small.buffer, 'address', { value: 0n })).toThrow();
    expect(small.buffer.bytes).toBe(4);
    const forged = dev().kernels.logsoftmax()({ logits: { dtype: 'float32', shape: [4, 1000], buffer: small.buffer } });
    expect(E.isLeft(forged) && forged.left.kind).toBe('shape');
  });

  it('reads a stream argument once: the preference losses launch and read back on one stream', () => {
    const chosen = right(dev().upload(f32(Float32Array.of(1, 2), [2])));
    const rejected = right(dev().upload(f32(Float32Array.of(0, 3), [2])));
    const other = right(dev().createStream());
    let reads = 0;
    const params = { get stream() { return ++reads === 1 ? dev().defaultStream : other; } };
    const r = right(dev().kernels.pairwise(params as never)({ chosen, rejected }));
    expect(reads).toBe(1);
    expect(r.accuracy).toBe(0.5);
  });

  it('takes only a CudaStream (or nothing) as a stream: anything else would run on the default stream unseen', () => {
    const logits = right(dev().upload(f32(new Float32Array(6).fill(0.5), [2, 3])));
    for (const stream of [{}, 'abc', 5, { address: 0n }]) {
      const r = dev().kernels.logsoftmax({ stream } as never)({ logits });
      expect(E.isLeft(r) && r.left.kind, String(stream)).toBe('param');
      const d = dev().download(logits, stream as never);
      expect(E.isLeft(d) && d.left.kind, String(stream)).toBe('param');
    }
  });

  it('a download that fails on a bad label leaves its out array as it was', () => {
    const logits = right(dev().upload(f32(randomFloats(4 * 50, rng(9)), [4, 50])));
    const labels = right(dev().upload(i32(Int32Array.from([1, 2, 50, 3]), [4])));
    const out = right(dev().kernels.logprobs()({ logits, labels }));
    const host = Float32Array.of(111, 222, 333, 444);
    const got = dev().download(out.logprobs, undefined, host);
    expect(E.isLeft(got) && got.left.kind).toBe('index');
    expect(Array.from(host)).toEqual([111, 222, 333, 444]);
  });

  it("keeps a bad label on the device API's stream to itself: a host-array call on cuda does not take the error", () => {
    const logits = right(dev().upload(f32(randomFloats(2 * 10, rng(5)), [2, 10])));
    const labels = right(dev().upload(i32(Int32Array.from([1, 10]), [2])));
    const out = right(dev().kernels.logprobs()({ logits, labels })); // the error is pending on the default stream
    const host = right(backend('cuda')).logsoftmax()({ logits: f32(randomFloats(20, rng(6)), [2, 10]) });
    expect(E.isRight(host)).toBe(true);
    const got = dev().download(out.logprobs);
    expect(E.isLeft(got) && got.left.kind).toBe('index');
  });

  it('propagates a NaN or +inf logit into the gradients, as the cpu kernels do', () => {
    const row = Float32Array.of(0.5, NaN, -1, 2, Infinity, 0, 1, 3);
    const logits = f32(row, [2, 4]);
    const q = f32(Float32Array.of(0, 1, 2, 3, 0, 1, 2, 3), [2, 4]);
    const cuda = right(backend('cuda'));
    const kl = right(cuda.klFull()({ logitsP: logits, logitsQ: q }));
    expect(Array.from(kl.gradLogitsP!.data).every(Number.isNaN)).toBe(true);
    const labels = i32(Int32Array.of(0, 1), [2]);
    const zeros = f32(new Float32Array(2), [2]);
    const g = right(cuda.logprobsBackward()({ logits, labels, gradLogprobs: zeros, gradEntropy: f32(Float32Array.of(1, 1), [2]) }));
    expect(Array.from(g.gradLogits.data).every(Number.isNaN)).toBe(true);
  });

  it('propagates a NaN pair through the DPO hinge loss (fmax dropped it), and is on the hinge exactly at βh = 1', () => {
    const cuda = right(backend('cuda'));
    const v = (...x: number[]) => f32(Float32Array.from(x), [x.length]);
    const res = right(cuda.dpo({ lossType: 'hinge' })({ policyChosen: v(NaN, 0.2), policyRejected: v(0, 0), refChosen: v(0, 0), refRejected: v(0, 0) }));
    expect(res.loss).toBeNaN();
    const exact = right(cuda.dpo({ lossType: 'hinge', beta: 0.01 })({ policyChosen: v(100), policyRejected: v(0), refChosen: v(0), refRejected: v(0) }));
    expect(exact.gradPolicyChosen.data[0]).toBe(0); // βh = 1 exactly, with β = 0.01 a double
  });
});
