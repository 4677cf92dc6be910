// Compiled (tsc --strict against the packed declarations) and run by scripts/check-packed.sh in a fresh
// project outside the repository that installed the packed packages with npm: every package imports
// by its name and its types check, the native addon was built at install and loads, its kernels agree
// with the js reference, a pipeline composes and a trainer learns. (The conformance cases run through
// the packed `rlhf-conformance` bin, in the same script.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { fromArray, unsafeTensor, type FloatArray, type FloatTensor, type Result } from '@rlhf/tensor';
import { backend, type Kernels } from '@rlhf/kernels';
import { NATIVE_ABI_VERSION, cudaUnavailableReason, nativeStatus } from '@rlhf/native';
import { pairwise } from '@rlhf/preference';
import { klEstimate } from '@rlhf/kl';
import { gae } from '@rlhf/gae';
import { policyLoss } from '@rlhf/ppo';
import { stage, start } from '@rlhf/pipeline';
import { rewardModelTrainer, rng, windowMlpReward } from '@rlhf/trainers';

const right = <A>(r: Result<A>): A => {
  if (E.isLeft(r)) throw new Error(`${r.left.kind}: ${r.left.message}`);
  return r.right;
};
const close = (a: FloatArray, b: FloatArray, tol: number, what: string) =>
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * (1 + Math.abs(b[i]!)), `${what}[${i}]: ${x} vs ${b[i]}`));

// The addon: built by @rlhf/native's install script inside node_modules, and of these packages' ABI.
const status = nativeStatus();
if (!status.loaded) throw new Error(`the native addon did not load: ${status.reason}`);
const { version } = JSON.parse(readFileSync(new URL('./node_modules/@rlhf/native/package.json', import.meta.url), 'utf8'));
assert.equal(status.version, version);
assert.equal(status.abiVersion, NATIVE_ABI_VERSION);
assert.ok(status.path.includes('node_modules'), `the addon should live in the installed package: ${status.path}`);
console.log(`native: ${status.version} (ABI ${status.abiVersion}), ${status.isa}, ${status.threads} threads, at ${status.path}`);
console.log(`cuda: ${cudaUnavailableReason() || 'available'}`);

// cpu against js on random rows (V not a multiple of any vector width), forward and backward.
const N = 16, V = 1003;
const g = rng(7);
const logits = unsafeTensor('float32', [N, V], Float32Array.from({ length: N * V }, () => 4 * g.normal()));
const labels = unsafeTensor('int32', [N], Int32Array.from({ length: N }, (_, i) => (i === 3 ? -100 : (i * 97) % V)));
const gradLogprobs = unsafeTensor('float32', [N], new Float32Array(N).fill(1));
const [cpu, js] = (['cpu', 'js'] as const).map((name) => right(backend(name)));
const run = (k: Kernels) => {
  const fwd = right(k.logprobs({ temperature: 0.8 })({ logits, labels }));
  const bwd = right(k.logprobsBackward({ temperature: 0.8 })({ logits, labels, gradLogprobs, rowStats: fwd.rowStats }));
  return { fwd, bwd };
};
const [a, b] = [run(cpu!), run(js!)];
close(a.fwd.logprobs.data, b.fwd.logprobs.data, 1e-5, 'logprobs');
close(a.fwd.entropy.data, b.fwd.entropy.data, 1e-5, 'entropy');
close(a.bwd.gradLogits.data, b.bwd.gradLogits.data, 1e-5, 'gradLogits');

// One call into each primitive package, as the stages of a typed pipeline (fp-ts pipe + TaskEither).
const f32 = (values: number[], shape?: number[]) => right(fromArray('float32', values, shape));
const mask = f32([1, 1, 1, 1, 1, 0], [2, 3]);
type Batch = { logprobs: FloatTensor; oldLogprobs: FloatTensor; mask: FloatTensor };
const kl = stage('kl', (r: Batch) =>
  E.map(({ kl }: { kl: FloatTensor }) => ({ rewards: kl }))(klEstimate({ estimator: 'k3' })({ logprobs: r.logprobs, refLogprobs: r.oldLogprobs })),
);
const advantages = stage('advantages', (r: { rewards: FloatTensor; mask: FloatTensor }) =>
  gae({ gamma: 1, lambda: 0.95 })({ rewards: r.rewards, values: f32([0, 0, 0, 0, 0, 0], [2, 3]), mask: r.mask }),
);
const loss = stage('policyLoss', (r: Batch & { advantages: FloatTensor }) => E.map((policy: { loss: number }) => ({ policy }))(policyLoss()(r)));
const step = await pipe(
  start({ logprobs: f32([-1, -0.5, -2, -0.1, -0.3, 0], [2, 3]), oldLogprobs: f32([-1.2, -0.4, -2.5, -0.2, -0.2, 0], [2, 3]), mask }),
  TE.chain(kl),
  TE.chain(advantages),
  TE.chain(loss),
)();
assert.ok(Number.isFinite(right(step).policy.loss));
assert.ok(Number.isFinite(right(pairwise()({ chosen: f32([1, 2]), rejected: f32([0, 3]) })).loss));

// A reward model learns a preference it can see: chosen responses are token 1, rejected token 2.
const B = 8, L = 4;
const tokens = (t: number) => unsafeTensor('int32', [B, L], new Int32Array(B * L).fill(t));
const respMask = unsafeTensor('uint8', [B, L], new Uint8Array(B * L).fill(1));
const batch = { chosen: tokens(1), chosenMask: respMask, rejected: tokens(2), rejectedMask: respMask };
const trainer = right(rewardModelTrainer({ model: right(windowMlpReward({ vocabSize: 4, window: 1, embedDim: 4, hidden: 8 }, rng(1))), optimizer: { lr: 0.05 } }));
const first = right(await trainer.evaluate(batch)());
for (let i = 0; i < 30; i++) right(await trainer.step(batch)());
const last = right(await trainer.evaluate(batch)());
assert.ok(last.loss < first.loss / 2 && last.accuracy === 1, `reward model: loss ${first.loss} -> ${last.loss}, accuracy ${last.accuracy}`);
console.log(`reward model: loss ${first.loss.toFixed(3)} -> ${last.loss.toFixed(3)}, accuracy ${last.accuracy}`);
console.log('packed packages: ok');
