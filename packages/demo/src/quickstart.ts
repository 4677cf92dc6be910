/**
 * One call of every primitive on small literal data: the README's examples, run by a test so they
 * cannot drift from the API. `node packages/demo/dist/quickstart.js` prints the results.
 */
import { pathToFileURL } from 'node:url';
import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import { fromArray, type DType, type FloatTensor, type RlhfError, type Tensor } from '@rlhf/tensor';
import '@rlhf/native'; // registers the cpu backend (and cuda on a GPU machine)
import { defaultBackend } from '@rlhf/kernels';
import { dpo, pairwise, ranking } from '@rlhf/preference';
import { adaptiveKlController, klEstimate, shapeRewards } from '@rlhf/kl';
import { gae, whiten } from '@rlhf/gae';
import { policyLoss, valueLoss } from '@rlhf/ppo';

/** Literal tensors for the examples (a wrong shape would be a bug here, so it throws). */
const t = <D extends DType>(dtype: D, values: number[], shape?: number[]): Tensor<D> =>
  pipe(
    fromArray(dtype, values, shape),
    E.getOrElseW((e: RlhfError) => {
      throw e;
    }),
  );

export const quickstart = () => {
  // Reward model: Bradley–Terry pairs, the K-way ranking (equal ranks tie, −1 pads), DPO.
  const pairs = pipe({ chosen: t('float32', [1.2, 0.3]), rejected: t('float32', [0.1, 0.9]) }, pairwise({ labelSmoothing: 0.1 }));
  const ranked = pipe(
    { rewards: t('float32', [2, 1, 0, 5], [1, 4]), ranks: t('int32', [0, 1, 2, -1], [1, 4]) },
    ranking(),
  );
  const direct = pipe(
    {
      policyChosen: t('float32', [-10, -12]),
      policyRejected: t('float32', [-11, -11]),
      refChosen: t('float32', [-10.5, -12]),
      refRejected: t('float32', [-10.5, -11.5]),
    },
    dpo({ beta: 0.1, lossType: 'sigmoid' }),
  );

  // Log-probs of sampled tokens and the entropy of each row, then the gradient wrt the logits.
  const k = defaultBackend();
  const logits = t('float32', [2, 1, 0.5, -1, 0, 3], [2, 3]);
  const labels = t('int32', [0, 2]);
  const lp = pipe({ logits, labels }, k.logprobs({ temperature: 1 }));
  // The backward from the forward's row statistics (rowStats) reads the logits once instead of twice.
  const grad = pipe(
    lp,
    E.chain(({ rowStats }) => k.logprobsBackward()({ logits, labels, gradLogprobs: t('float32', [1, 1]), rowStats })),
  );

  // The KL penalty: per-token estimators, KL-shaped rewards, the adaptive controller.
  const logprobs = t('float32', [-1, -0.5, -2, -0.1, -0.3, 0], [2, 3]);
  const refLogprobs = t('float32', [-1.2, -0.4, -2.5, -0.2, -0.2, 0], [2, 3]);
  const mask = t('float32', [1, 1, 1, 1, 1, 0], [2, 3]);
  const kl = pipe({ logprobs, refLogprobs }, klEstimate({ estimator: 'k3', clamp: 10 }));
  const shaped = pipe({ scores: t('float32', [1, -1]), logprobs, refLogprobs, mask }, shapeRewards({ beta: 0.05 }));
  const beta = pipe(
    adaptiveKlController({ initKlCoef: 0.2, target: 6 }),
    E.chain((c) => c.update(8, 256)),
    E.map((c) => c.beta),
  );

  // Advantages, then the PPO losses on them.
  const values = t('float32', [0.1, 0.2, 0.3, 0.0, 0.1, 0], [2, 3]);
  const adv = pipe(
    shaped,
    E.chain(({ rewards }) => gae({ gamma: 1, lambda: 0.95 })({ rewards, values, mask })),
    E.chain(({ advantages, returns }) => E.map(({ y }: { y: FloatTensor }) => ({ advantages: y, returns }))(whiten()({ x: advantages, mask }))),
  );
  const policy = pipe(
    adv,
    E.chain(({ advantages }) =>
      policyLoss({ clipLow: 0.2, clipHigh: 0.28, dualClip: 3 })({ logprobs, oldLogprobs: refLogprobs, advantages, mask }),
    ),
  );
  const value = pipe(
    adv,
    E.chain(({ returns }) => valueLoss({ clipRange: 0.2 })({ values, oldValues: values, returns, mask })),
  );
  return { backend: k.name, pairs, ranked, direct, lp, grad, kl, shaped, beta, adv, policy, value };
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = quickstart();
  for (const [name, r] of Object.entries(results))
    console.log(name, typeof r === 'string' ? r : E.isLeft(r) ? `error: ${r.left.message}` : JSON.stringify(r.right, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)));
}
