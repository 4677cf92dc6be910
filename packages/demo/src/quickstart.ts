/**
 * The README's examples on small literal data. README.md shows the lines between the two markers
 * verbatim, and quickstart.test.ts checks both that and the results against the SPEC, so the README
 * cannot drift from the API. `node packages/demo/dist/quickstart.js` prints the results.
 */
// README example: begin
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import { fromArray, type DType, type Tensor } from '@rlhf/tensor';
import '@rlhf/native'; // registers the cpu backend (and cuda on a GPU machine)
import { defaultBackend } from '@rlhf/kernels';
import { dpo, pairwise, ranking } from '@rlhf/preference';
import { adaptiveKlController, klEstimate, klFull, shapeRewards } from '@rlhf/kl';
import { gae, whiten } from '@rlhf/gae';
import { policyLoss, valueLoss } from '@rlhf/ppo';

// Literal tensors (fromArray returns an Either; a wrong literal is a bug here, so it throws).
const t = <D extends DType>(dtype: D, values: number[], shape?: number[]): Tensor<D> =>
  pipe(fromArray(dtype, values, shape), E.getOrElseW((e) => { throw e; }));

// Reward model: Bradley–Terry pairs, the K-way ranking (equal ranks tie, −1 pads), DPO.
const pairs = pipe({ chosen: t('float32', [1.2, 0.3]), rejected: t('float32', [0.1, 0.9]) }, pairwise({ labelSmoothing: 0.1 }));
const ranked = pipe({ rewards: t('float32', [2, 1, 0, 5], [1, 4]), ranks: t('int32', [0, 1, 2, -1], [1, 4]) }, ranking());
const direct = pipe(
  {
    policyChosen: t('float32', [-10, -12]), policyRejected: t('float32', [-11, -11]),
    refChosen: t('float32', [-10.5, -12]), refRejected: t('float32', [-10.5, -11.5]),
  },
  dpo({ beta: 0.1, lossType: 'sigmoid' }), // the preference losses and klFull also take { backend: 'js' | 'cpu' | 'cuda' }
);

// Token log-probs and row entropy without materialising softmax, then the gradient wrt the logits.
const k = defaultBackend(); // cpu when the addon loaded, else js; backend('cuda') gives Either<RlhfError, Kernels>
const logits = t('float32', [2, 1, 0.5, -1, 0, 3], [2, 3]);
const labels = t('int32', [0, 2]);
const gradLogprobs = t('float32', [1, 1]);
const lp = pipe({ logits, labels }, k.logprobs({ temperature: 1 })); // logprobs, entropy, rowStats
const grad = pipe({ logits, labels, gradLogprobs }, k.logprobsBackward()); // { inPlace: true } reuses the logits buffer
const gradFromStats = pipe( // from the forward's rowStats the backward reads the logits once, not twice
  lp,
  E.chain(({ rowStats }) => k.logprobsBackward()({ logits, labels, gradLogprobs, rowStats })),
);
const lpAsync = await k.async.logprobs()({ logits, labels })(); // a TaskEither, run off the event loop
const exactKl = pipe({ logitsP: logits, logitsQ: t('float32', [1, 1, 1, 0, 0, 0], [2, 3]) }, klFull()); // kl, gradLogitsP

// The KL penalty: per-token estimators, KL-shaped rewards (the score at the last valid token), adaptive β.
const logprobs = t('float32', [-1, -0.5, -2, -0.1, -0.3, 0], [2, 3]);
const refLogprobs = t('float32', [-1.2, -0.4, -2.5, -0.2, -0.2, 0], [2, 3]);
const mask = t('float32', [1, 1, 1, 1, 1, 0], [2, 3]);
const kl = pipe({ logprobs, refLogprobs }, klEstimate({ estimator: 'k3', clamp: 10 }));
const shaped = pipe({ scores: t('float32', [1, -1]), logprobs, refLogprobs, mask }, shapeRewards({ beta: 0.05 }));
const beta = pipe(
  adaptiveKlController({ initKlCoef: 0.2, target: 6 }),
  E.chain((c) => c.update(8, 256)), // observed KL 8 nats over 256 samples
  E.map((c) => c.beta),
);

// Advantages, whitened, then the PPO losses on them.
const values = t('float32', [0.1, 0.2, 0.3, 0.0, 0.1, 0], [2, 3]);
const adv = pipe(
  shaped,
  E.chain(({ rewards }) => gae({ gamma: 1, lambda: 0.95 })({ rewards, values, mask })),
  E.chain(({ advantages, returns }) =>
    pipe(whiten()({ x: advantages, mask }), E.map(({ y }) => ({ advantages: y, returns }))),
  ),
);
const policy = pipe(
  adv,
  E.chain(({ advantages }) =>
    policyLoss({ clipLow: 0.2, clipHigh: 0.28, dualClip: 3 })({ logprobs, oldLogprobs: refLogprobs, advantages, mask }),
  ),
);
const value = pipe(adv, E.chain(({ returns }) => valueLoss({ clipRange: 0.2 })({ values, oldValues: values, returns, mask })));
// README example: end

import { pathToFileURL } from 'node:url';

export const results = { pairs, ranked, direct, lp, grad, gradFromStats, lpAsync, exactKl, kl, shaped, beta, adv, policy, value };
export const backendName = k.name;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('backend', backendName);
  for (const [name, r] of Object.entries(results))
    console.log(name, E.isLeft(r) ? `error: ${r.left.message}` : JSON.stringify(r.right, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)));
}
