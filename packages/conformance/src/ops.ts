import * as E from 'fp-ts/lib/Either.js';
import type { Kernels } from '@rlhf/kernels';
import { dpo, pairwise, ranking } from '@rlhf/preference';
import { adaptiveKl, klEstimate, klFull, shapeRewards } from '@rlhf/kl';
import { gae, whiten } from '@rlhf/gae';
import { policyLoss, valueLoss } from '@rlhf/ppo';
import type { RlhfError, Tensor } from '@rlhf/tensor';

type Params = Record<string, unknown>;
type Inputs = Record<string, Tensor>;
/** Caller-owned output buffers (`op(params, out)`), by output name. */
export type Out = Record<string, ArrayBufferView>;
/** Runs one SPEC operation through the public API on a backend (ops that are pure TS ignore it). */
export type OpRunner = (k: Kernels, params: Params, inputs: Inputs, out?: Out) => E.Either<RlhfError, object>;

// The public functions are typed per operation; a case supplies untyped records, validated by the function itself.
const call = (f: (p?: never, o?: never) => (i: never) => E.Either<RlhfError, object>, p: Params, i: Inputs, o?: Out) =>
  f(p as never, o as never)(i as never);

/** The SPEC's operation names, mapped to the project's public functions. */
export const OPS: Readonly<Record<string, OpRunner>> = {
  logprobs: (k, p, i, o) => call(k.logprobs, p, i, o),
  'logprobs.backward': (k, p, i, o) => call(k.logprobsBackward, p, i, o),
  logsoftmax: (k, p, i, o) => call(k.logsoftmax, p, i, o),
  'logsoftmax.backward': (k, p, i, o) => call(k.logsoftmaxBackward, p, i, o),
  'kl.full': (k, p, i, o) => call(klFull, { ...p, backend: k }, i, o),
  'preference.pairwise': (k, p, i, o) => call(pairwise, { ...p, backend: k }, i, o),
  'preference.ranking': (k, p, i, o) => call(ranking, { ...p, backend: k }, i, o),
  'preference.dpo': (k, p, i, o) => call(dpo, { ...p, backend: k }, i, o),
  'kl.estimate': (_, p, i, o) => call(klEstimate, p, i, o),
  'kl.shapeRewards': (_, p, i, o) => call(shapeRewards, p, i, o),
  'kl.adaptive': (_, p, i, o) => call(adaptiveKl, p, i, o),
  gae: (_, p, i, o) => call(gae, p, i, o),
  whiten: (_, p, i, o) => call(whiten, p, i, o),
  'ppo.policy': (_, p, i, o) => call(policyLoss, p, i, o),
  'ppo.value': (_, p, i, o) => call(valueLoss, p, i, o),
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
