import * as E from 'fp-ts/lib/Either.js';
import type { Kernels } from '@rlhf/kernels';
import { dpo, pairwise, ranking } from '@rlhf/preference';
import { adaptiveKl, klEstimate, klFull, shapeRewards } from '@rlhf/kl';
import { gae, whiten } from '@rlhf/gae';
import { policyLoss, valueLoss } from '@rlhf/ppo';
import type { RlhfError, Tensor } from '@rlhf/tensor';

type Params = Record<string, unknown>;
type Inputs = Record<string, Tensor>;
/** Runs one SPEC operation through the public API on a backend (ops that are pure TS ignore it). */
export type OpRunner = (k: Kernels, params: Params, inputs: Inputs) => E.Either<RlhfError, object>;

// The public functions are typed per operation; a case supplies untyped records, validated by the function itself.
const call = (f: (p?: never) => (i: never) => E.Either<RlhfError, object>, p: Params, i: Inputs) =>
  f(p as never)(i as never);

/** The SPEC's operation names, mapped to the project's public functions. */
export const OPS: Readonly<Record<string, OpRunner>> = {
  logprobs: (k, p, i) => call(k.logprobs, p, i),
  'logprobs.backward': (k, p, i) => call(k.logprobsBackward, p, i),
  logsoftmax: (k, p, i) => call(k.logsoftmax, p, i),
  'logsoftmax.backward': (k, p, i) => call(k.logsoftmaxBackward, p, i),
  'kl.full': (k, p, i) => call(klFull, { ...p, backend: k }, i),
  'preference.pairwise': (k, p, i) => call(pairwise, { ...p, backend: k }, i),
  'preference.ranking': (k, p, i) => call(ranking, { ...p, backend: k }, i),
  'preference.dpo': (k, p, i) => call(dpo, { ...p, backend: k }, i),
  'kl.estimate': (_, p, i) => call(klEstimate, p, i),
  'kl.shapeRewards': (_, p, i) => call(shapeRewards, p, i),
  'kl.adaptive': (_, p, i) => call(adaptiveKl, p, i),
  gae: (_, p, i) => call(gae, p, i),
  whiten: (_, p, i) => call(whiten, p, i),
  'ppo.policy': (_, p, i) => call(policyLoss, p, i),
  'ppo.value': (_, p, i) => call(valueLoss, p, i),
};

/**
 * Runs `op` with the `rowStats` that `forward` saved for the same inputs and parameters, or without
 * them where the forward fails (an error case then still reports the op's own error).
 */
const fromSavedStats =
  (forward: OpRunner, op: OpRunner): OpRunner =>
  (k, p, i) => {
    const saved = forward(k, p, i) as E.Either<RlhfError, { rowStats: Tensor }>;
    return op(k, p, E.isRight(saved) ? { ...i, rowStats: saved.right.rowStats } : i);
  };

/**
 * Other routes through the public API to an operation's outputs; a case passes only if every route
 * does: the gradients from a forward's saved `rowStats`, which skip their own statistics pass.
 */
export const ROUTES: Readonly<Record<string, Readonly<Record<string, OpRunner>>>> = {
  'logprobs.backward': {
    "from the forward's rowStats": fromSavedStats(OPS['logprobs']!, OPS['logprobs.backward']!),
  },
  'kl.full': {
    "from a forward's rowStats": fromSavedStats((k, p, i) => call(klFull, { ...p, withGrad: false, backend: k }, i), OPS['kl.full']!),
  },
};
