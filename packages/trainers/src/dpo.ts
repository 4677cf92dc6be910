import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { resolveBackend, type BackendName, type DpoLossType, type DpoOutputs, type Kernels } from '@rlhf/kernels';
import { dpo } from '@rlhf/preference';
import { stage, start } from '@rlhf/pipeline';
import { paramError, unsafeTensor, type Result, type RlhfError } from '@rlhf/tensor';
import { checkPairBatch, checkRankingBatch, rankingToPairs, type PairBatch, type RankingBatch } from './comparisons.js';
import { sumRows, spreadRows, tokenLogprobs, type TokenLogprobs } from './logprobs.js';
import type { Policy } from './model.js';
import { adam, type Adam, type AdamParams } from './optim/adam.js';

export interface DpoTrainerConfig {
  readonly policy: Policy;
  /** The frozen reference (usually a copy of the policy before training); never updated. */
  readonly reference: Policy;
  readonly optimizer: AdamParams;
  readonly beta?: number | null;
  readonly lossType?: DpoLossType | null;
  readonly labelSmoothing?: number | null;
  readonly backend?: Kernels | BackendName | null;
}

export interface DpoStats {
  readonly loss: number;
  readonly accuracy: number;
  readonly rewardsChosen: number;
  readonly rewardsRejected: number;
  /** Mean of rewardsChosen − rewardsRejected. */
  readonly rewardMargin: number;
  readonly pairs: number;
  readonly gradNorm: number;
  readonly lr: number;
}

export interface DpoTrainer {
  /** One optimiser step on pairs, or on rankings expanded into their ordered pairs. */
  readonly step: (batch: PairBatch | RankingBatch) => TE.TaskEither<RlhfError, DpoStats>;
  readonly optimizer: Adam;
}

const mean = (xs: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length === 0 ? 0 : s / xs.length;
};

/**
 * Direct preference optimisation (Rafailov et al. 2023) on the same comparison data as the reward
 * model: a step is validate → reference log-probs → policy log-probs → DPO loss → backward → optimise.
 */
export const dpoTrainer = (config: DpoTrainerConfig): Result<DpoTrainer> =>
  pipe(
    E.Do,
    E.bind('kernels', () => resolveBackend(config.backend)),
    E.bind('optimizer', () => adam(config.policy.parameters, config.optimizer)),
    E.chainFirst(() =>
      config.reference.vocabSize === config.policy.vocabSize
        ? E.right(undefined)
        : E.left(paramError(`reference vocabulary ${config.reference.vocabSize} ≠ policy vocabulary ${config.policy.vocabSize}`)),
    ),
    E.map(({ kernels, optimizer }) => {
      const { policy, reference } = config;
      const policyLp = tokenLogprobs(policy, kernels);
      const referenceLp = tokenLogprobs(reference, kernels);

      const validate = stage('validate', (r: { batch: PairBatch | RankingBatch }) =>
        'ranks' in r.batch
          ? E.map((b: RankingBatch) => ({ pairs: rankingToPairs(b) }))(checkRankingBatch(r.batch, policy.vocabSize))
          : E.map((pairs: PairBatch) => ({ pairs }))(checkPairBatch(r.batch, policy.vocabSize)),
      );
      const referenceLogprobs = stage('referenceLogprobs', ({ pairs }: { pairs: PairBatch }) =>
        pipe(
          E.Do,
          E.bind('refChosen', () => referenceLp(pairs.chosen, pairs.chosenMask)),
          E.bind('refRejected', () => referenceLp(pairs.rejected, pairs.rejectedMask)),
          E.map(({ refChosen, refRejected }) => ({
            refChosen: sumRows(refChosen.logprobs, pairs.chosenMask),
            refRejected: sumRows(refRejected.logprobs, pairs.rejectedMask),
          })),
        ),
      );
      const policyLogprobs = stage('policyLogprobs', ({ pairs }: { pairs: PairBatch }) =>
        pipe(
          E.Do,
          E.bind('chosen', () => policyLp(pairs.chosen, pairs.chosenMask)),
          E.bind('rejected', () => policyLp(pairs.rejected, pairs.rejectedMask)),
        ),
      );
      const loss = stage(
        'loss',
        (r: { pairs: PairBatch; chosen: TokenLogprobs; rejected: TokenLogprobs; refChosen: Float64Array; refRejected: Float64Array }) => {
          const B = r.refChosen.length;
          const seq = (x: Float64Array) => unsafeTensor('float64', [B], x);
          return E.map((out: DpoOutputs) => ({ dpo: out }))(
            dpo({ backend: kernels, beta: config.beta, lossType: config.lossType, labelSmoothing: config.labelSmoothing })({
              policyChosen: seq(sumRows(r.chosen.logprobs, r.pairs.chosenMask)),
              policyRejected: seq(sumRows(r.rejected.logprobs, r.pairs.rejectedMask)),
              refChosen: seq(r.refChosen),
              refRejected: seq(r.refRejected),
            }),
          );
        },
      );
      const backward = stage(
        'backward',
        (r: { pairs: PairBatch; chosen: TokenLogprobs; rejected: TokenLogprobs; dpo: DpoOutputs }) =>
          pipe(
            r.chosen.backward(spreadRows(r.dpo.gradPolicyChosen.data, r.pairs.chosenMask, r.chosen.logprobs.dtype)),
            E.chain(() => r.rejected.backward(spreadRows(r.dpo.gradPolicyRejected.data, r.pairs.rejectedMask, r.rejected.logprobs.dtype))),
            E.map(() => ({})),
          ),
      );
      const optimize = stage('optimize', (_: object) => E.right(optimizer.step()));

      const step = (batch: PairBatch | RankingBatch) =>
        pipe(
          start({ batch }),
          TE.chain(validate),
          TE.chain(referenceLogprobs),
          TE.chain(policyLogprobs),
          TE.chain(loss),
          TE.chain(backward),
          TE.chain(optimize),
          TE.map(
            (r): DpoStats => ({
              loss: r.dpo.loss,
              accuracy: r.dpo.accuracy,
              rewardsChosen: mean(r.dpo.rewardsChosen.data),
              rewardsRejected: mean(r.dpo.rewardsRejected.data),
              rewardMargin: mean(r.dpo.rewardsChosen.data) - mean(r.dpo.rewardsRejected.data),
              pairs: r.refChosen.length,
              gradNorm: r.gradNorm,
              lr: r.lr,
            }),
          ),
        );
      return { step, optimizer };
    }),
  );
