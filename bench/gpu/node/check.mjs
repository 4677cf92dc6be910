// The Node-side GPU check (run by bench/gpu/node/run.sh on the lent machine, from .gpu-node/app):
// the conformance cases on cpu and cuda through the public API, cuda against cpu on random large
// inputs (−∞ entries, ignored rows holding NaN, odd V), the device-buffer API, and a few timings.
import { performance } from 'node:perf_hooks';
import * as E from 'fp-ts/lib/Either.js';
import { backend, backendStatus } from '@rlhf/kernels';
import { cudaDevice, nativeStatus } from '@rlhf/native';
import { defaultCaseDirs, loadCases, runConformance, summarize } from '@rlhf/conformance';

const lines = [];
const say = (s) => (console.log(s), lines.push(s));
const right = (r, what) => {
  if (E.isLeft(r)) throw new Error(`${what}: ${r.left.message}`);
  return r.right;
};
say(`native: ${JSON.stringify(nativeStatus())}`);
say(`backends: ${JSON.stringify(backendStatus())}`);
// RLHF_CHECK_DRY=1 (no GPU): the cpu backend stands in for cuda, small shapes only, no device buffers.
const dry = process.env.RLHF_CHECK_DRY === '1';
const dev = dry ? { name: 'dry run: cpu standing in for cuda' } : cudaDevice();
if (!dev) {
  say('cuda backend unavailable: nothing to check');
  process.exit(1);
}
say(`device: ${dev.name}`);
let failures = 0;

// ---- 1. conformance cases -------------------------------------------------------------------------
for (const b of dry ? ['cpu'] : ['cpu', 'cuda']) {
  const results = runConformance(loadCases(defaultCaseDirs), [b]);
  for (const r of results) if (r.outcome.status === 'fail') say(`FAIL [${b}] ${r.case}: ${r.outcome.problems.join('; ')}`);
  const s = summarize(results);
  failures += s.failed;
  say(`conformance [${b}]: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped`);
}

// ---- 2. cuda against cpu on random inputs ---------------------------------------------------------------
let seed = 12345;
const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
const f32 = (shape, fill) => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, fill) });
const relL2 = (a, b) => {
  let num = 0, den = 0, nanMismatch = 0, maxAbs = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i], y = b[i];
    if (Number.isNaN(y) ? !Number.isNaN(x) : !Number.isFinite(y) && x !== y) { nanMismatch++; continue; }
    if (!Number.isFinite(y)) continue;
    num += (x - y) ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(x - y));
    den += y * y;
  }
  return { rel: Math.sqrt(num / Math.max(den, 1e-30)), nanMismatch, maxAbs };
};
const cpu = right(backend('cpu'), 'cpu');
const cuda = right(backend(dry ? 'cpu' : 'cuda'), 'cuda');
const compare = (name, shape, got, want) => {
  // rowStats' pivots may differ between backends (lse = m/T + s does not): the backward from them checks them.
  const outputs = Object.keys(want).filter((k) => k !== 'rowStats' && want[k]?.data && got[k]?.data);
  for (const k of outputs) {
    const { rel, nanMismatch, maxAbs } = relL2(got[k].data, want[k].data);
    // rel L2 is meaningless where the reference is ~0 (V = 1: cpu rounds to ±3e-8, cuda gives 0): then max |diff| decides.
    const ok = (rel < 1e-4 || maxAbs < 1e-6) && nanMismatch === 0;
    if (!ok) failures++;
    say(`${ok ? 'ok  ' : 'FAIL'} ${name} [${shape}] ${k}: rel L2 ${rel.toExponential(2)}, max |diff| ${maxAbs.toExponential(2)}, non-finite mismatches ${nanMismatch}`);
  }
};
const shapes = [[4096, 32000], [1024, 128256], [64, 1], [64, 7], [256, 1031], [16, 50257], [3, 131073]].filter(([N, V]) => !dry || N * V < 1e6);
for (const [N, V] of shapes) {
  const logits = f32([N, V], () => (rand() * 2 - 1) * 8);
  for (let n = 0; n < N; n += 7) logits.data[n * V + ((n * 31) % V)] = -Infinity;
  const labels = { dtype: 'int32', shape: [N], data: Int32Array.from({ length: N }, (_, n) => (n % 5 === 4 ? -100 : (n * 7919) % V)) };
  for (let n = 4; n < N; n += 5) logits.data.fill(NaN, n * V, n * V + V); // ignored rows must never be read
  const gradLogprobs = f32([N], () => rand() - 0.5);
  const gradEntropy = f32([N], () => rand() - 0.5);
  const p = { temperature: 0.9 };
  const forward = right(cuda.logprobs(p)({ logits, labels }), 'cuda');
  compare('logprobs', [N, V], forward, right(cpu.logprobs(p)({ logits, labels }), 'cpu'));
  const bwdIn = { logits, labels, gradLogprobs, gradEntropy };
  const want = right(cpu.logprobsBackward(p)(bwdIn), 'cpu');
  compare('logprobs.backward', [N, V], right(cuda.logprobsBackward(p)(bwdIn), 'cuda'), want);
  compare('logprobs.backward from rowStats', [N, V], right(cuda.logprobsBackward(p)({ ...bwdIn, rowStats: forward.rowStats }), 'cuda'), want);
  if (N * V <= 50_000_000) {
    const clean = f32([N, V], () => (rand() * 2 - 1) * 8);
    const other = f32([N, V], () => (rand() * 2 - 1) * 8);
    compare('logsoftmax', [N, V], right(cuda.logsoftmax(p)({ logits: clean }), 'cuda'), right(cpu.logsoftmax(p)({ logits: clean }), 'cpu'));
    compare('logsoftmax.backward', [N, V], right(cuda.logsoftmaxBackward(p)({ logits: clean, gradOutput: other }), 'cuda'), right(cpu.logsoftmaxBackward(p)({ logits: clean, gradOutput: other }), 'cpu'));
    const klIn = { logitsP: clean, logitsQ: other };
    const klWant = right(cpu.klFull(p)(klIn), 'cpu');
    const klGot = right(cuda.klFull(p)(klIn), 'cuda');
    compare('kl.full', [N, V], klGot, klWant);
    compare('kl.full from rowStats', [N, V], right(cuda.klFull(p)({ ...klIn, rowStats: klGot.rowStats }), 'cuda'), klWant);
  }
}
{
  const B = 100_000, K = 8;
  const rewards = f32([B, K], () => rand() * 4 - 2);
  const ranks = { dtype: 'int32', shape: [B, K], data: Int32Array.from({ length: B * K }, (_, i) => (i % 13 === 5 ? -1 : (i * 3) % K)) };
  const a = right(cuda.ranking()({ rewards, ranks }), 'cuda ranking');
  const b = right(cpu.ranking()({ rewards, ranks }), 'cpu ranking');
  const ok = Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(b.loss) + 1e-6 && a.pairs === b.pairs && Math.abs(a.accuracy - b.accuracy) < 1e-9;
  if (!ok) failures++;
  say(`${ok ? 'ok  ' : 'FAIL'} ranking [${B}x${K}]: loss ${a.loss} vs ${b.loss}, pairs ${a.pairs} vs ${b.pairs}`);
  compare('ranking', [B, K], a, b);
}

// ---- 3. device buffers and timings ---------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
const time = (reps, f) => {
  f();
  const ts = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
};
for (const [N, V] of dry ? [] : [[4096, 32000], [1024, 128256]]) {
  const logits = f32([N, V], () => (rand() * 2 - 1) * 8);
  const labels = { dtype: 'int32', shape: [N], data: Int32Array.from({ length: N }, (_, n) => (n * 7919) % V) };
  const dLogits = right(dev.upload(logits), 'upload');
  const dLabels = right(dev.upload(labels), 'upload');
  const outs = { logprobs: right(dev.alloc('float32', [N]), 'alloc'), entropy: right(dev.alloc('float32', [N]), 'alloc') };
  const onDevice = right(dev.kernels.logprobs({}, outs)({ logits: dLogits, labels: dLabels }), 'device logprobs');
  const back = right(dev.download(onDevice.logprobs), 'download');
  compare('device-buffer logprobs', [N, V], { logprobs: back }, right(cpu.logprobs()({ logits, labels }), 'cpu'));
  // The backward on device buffers from the forward's rowStats, still on the device.
  const hostGrad = f32([N], () => rand() - 0.5);
  const gradLogprobs = right(dev.upload(hostGrad), 'upload');
  const fromStats = right(dev.kernels.logprobsBackward()({ logits: dLogits, labels: dLabels, gradLogprobs, rowStats: onDevice.rowStats }), 'device backward');
  compare('device-buffer logprobs.backward from rowStats', [N, V], { gradLogits: right(dev.download(fromStats.gradLogits), 'download') },
    right(cpu.logprobsBackward()({ logits, labels, gradLogprobs: hostGrad }), 'cpu'));
  const hostOut = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
  const tDevice = time(20, () => {
    right(dev.kernels.logprobs({}, outs)({ logits: dLogits, labels: dLabels }), 'x');
    right(dev.synchronize(), 'sync');
  });
  const tHost = time(5, () => right(cuda.logprobs({}, hostOut)({ logits, labels }), 'x'));
  const tCpu = time(5, () => right(cpu.logprobs({}, hostOut)({ logits, labels }), 'x'));
  const gb = (N * V * 4) / 1e9;
  say(`timing logprobs [${N}x${V}] from Node: device buffers ${tDevice.toFixed(3)} ms (${(gb / tDevice * 1e3).toFixed(0)} GB/s, launch + sync included); cuda on host arrays ${tHost.toFixed(1)} ms (PCIe copies); cpu (${nativeStatus().threads ?? '?'} threads) ${tCpu.toFixed(1)} ms`);
  dLogits.buffer.free();
  dLabels.buffer.free();
}
say(`node check: ${failures === 0 ? 'all passed' : `${failures} failed`}`);
process.exit(failures === 0 ? 0 : 1);
