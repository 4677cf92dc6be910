import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import type { Kernels } from '@rlhf/kernels';
import { unsafeTensor, type FloatTensor, type IntTensor, type MaskTensor, type Result } from '@rlhf/tensor';
import { checkMaskFor, checkTokens, type Policy } from './model.js';

const IGNORE = -100;

/** Per-token log-probs and entropies of a policy on its own tokens, and the way back to its parameters. */
export interface TokenLogprobs {
  /** [B, L], 0 outside the mask. */
  readonly logprobs: FloatTensor;
  /** [B, L], 0 outside the mask. */
  readonly entropy: FloatTensor;
  /** Back-propagates d loss/d logprobs (and d loss/d entropy) through the kernels and the policy. */
  readonly backward: (gradLogprobs: FloatTensor, gradEntropy?: FloatTensor | null) => Result<void>;
}

/**
 * The policy's log-probabilities of `tokens` at the positions of `mask`: the policy gives logits,
 * the `logprobs` kernel gathers and computes entropies, and `logprobsBackward` turns gradients
 * with respect to log-probs and entropies into gradients with respect to the logits, from the
 * row statistics the forward saved (so the backward reads the logits once).
 * Positions outside the mask are labelled `ignoreIndex`, so the kernels skip them.
 */
export const tokenLogprobs =
  (policy: Policy, kernels: Kernels) =>
  (tokens: IntTensor, mask: MaskTensor): Result<TokenLogprobs> =>
    pipe(
      checkTokens('tokens', tokens, policy.vocabSize),
      E.chain((t) => pipe(checkMaskFor('mask', mask, t), E.map((m) => ({ t, m })))),
      E.bindTo('input'),
      E.bind('forward', ({ input }) => policy.logits(input.t)),
      E.bind('labels', ({ input: { t, m } }) =>
        E.right(unsafeTensor('int32', [t.data.length], Int32Array.from(t.data, (id, i) => (m.data[i] !== 0 ? id : IGNORE)))),
      ),
      E.bind('lp', ({ forward, labels }) => kernels.logprobs({ ignoreIndex: IGNORE })({ logits: forward.output, labels })),
      E.map(({ input, forward, labels, lp }) => ({
        logprobs: unsafeTensor(lp.logprobs.dtype, input.t.shape, lp.logprobs.data) as FloatTensor,
        entropy: unsafeTensor(lp.entropy.dtype, input.t.shape, lp.entropy.data) as FloatTensor,
        backward: (gradLogprobs: FloatTensor, gradEntropy?: FloatTensor | null) =>
          pipe(
            kernels.logprobsBackward({ ignoreIndex: IGNORE })({
              logits: forward.output,
              labels,
              gradLogprobs: flat(gradLogprobs),
              gradEntropy: gradEntropy ? flat(gradEntropy) : null,
              rowStats: lp.rowStats, // the forward's row statistics: the logits are read once more, not twice
            }),
            E.chain(({ gradLogits }) => forward.backward(gradLogits)),
          ),
      })),
    );

const flat = (t: FloatTensor): FloatTensor => unsafeTensor(t.dtype, [t.data.length], t.data) as FloatTensor;

/** Σ over the masked positions of each row: sequence log-probs [B] from token log-probs [B, L]. */
export const sumRows = (x: FloatTensor, mask: MaskTensor): Float64Array => {
  const [B, L] = x.shape as [number, number];
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) if (mask.data[b * L + t] !== 0) out[b]! += x.data[b * L + t]!;
  return out;
};

/**
 * Broadcasts a per-row gradient g[B] to the masked positions of [B, L] (0 elsewhere), in `dtype`:
 * that of the log-probs it is the gradient of (the backward takes no other).
 */
export const spreadRows = (g: ArrayLike<number>, mask: MaskTensor, dtype: FloatTensor['dtype'] = 'float64'): FloatTensor => {
  const [B, L] = mask.shape as [number, number];
  const out = unsafeTensor(dtype, [B, L]);
  for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) if (mask.data[b * L + t] !== 0) out.data[b * L + t] = g[b]!;
  return out as FloatTensor;
};
