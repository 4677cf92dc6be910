import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { resolveBackend, type BackendName, type Kernels } from '@rlhf/kernels';
import { pairwise, ranking } from '@rlhf/preference';
import { stage, start } from '@rlhf/pipeline';
import { nonNegative, unsafeTensor, type FloatTensor, type Result, type RlhfError } from '@rlhf/tensor';
import {
  checkPairBatch,
  checkRankingBatch,
  flattenResponses,
  type PairBatch,
  type RankingBatch,
} from './comparisons.js';
import { meanStd } from './metrics.js';
import type { Forward, RewardModel } from './model.js';
import { adam, type Adam, type AdamParams } from './optim/adam.js';

export interface RewardModelTrainerConfig {
  readonly model: RewardModel;
  readonly optimizer: AdamParams;
  /** TRL's reward centering: adds `c·(Σ of a prompt's rewards)²` averaged over prompts (default 0). */
  readonly centerCoef?: number | null;
  /** Label smoothing ε of the pairwise loss (pair batches only, default 0). */
  readonly labelSmoothing?: number | null;
  readonly backend?: Kernels | BackendName | null;
}

export interface RewardModelStats {
  readonly loss: number;
  /** Fraction of ordered pairs the model scores in the annotator's order. */
  readonly accuracy: number;
  readonly pairs: number;
  readonly rewardMean: number;
  readonly rewardStd: number;
  /** Only after an optimiser step. */
  readonly gradNorm?: number;
  readonly lr?: number;
}

export interface RewardModelTrainer {
  /** One optimiser step on a batch of K-way rankings or of pairs (with optional margins). */
  readonly step: (batch: RankingBatch | PairBatch) => TE.TaskEither<RlhfError, RewardModelStats>;
  /** The same loss and metrics on held-out data, without touching the model. */
  readonly evaluate: (batch: RankingBatch | PairBatch) => TE.TaskEither<RlhfError, RewardModelStats>;
  readonly optimizer: Adam;
}

const isRanking = (b: RankingBatch | PairBatch): b is RankingBatch => 'ranks' in b;

/** What the loss stage hands on: the metrics and the way back into the model. */
interface Scored {
  readonly stats: RewardModelStats;
  readonly backward: () => Result<void>;
}

/** Adds TRL's centering term c·mean_b(s_b²) (s_b = sum of row b's valid rewards) to a loss and its gradient. */
const centering = (c: number, sums: Float64Array, addGrad: (b: number, g: number) => void): number => {
  if (c === 0) return 0;
  const B = sums.length;
  let loss = 0;
  for (let b = 0; b < B; b++) {
    loss += (c * sums[b]! * sums[b]!) / B;
    addGrad(b, (2 * c * sums[b]!) / B);
  }
  return loss;
};

const scoreRankings = (model: RewardModel, k: Kernels, centerCoef: number) => (batch: RankingBatch): Result<Scored> =>
  pipe(
    model.scores(flattenResponses(batch.tokens), flattenResponses(batch.mask)),
    E.bindTo('forward'),
    E.bind('rewards', ({ forward }) => E.right(unsafeTensor(forward.output.dtype, batch.ranks.shape, forward.output.data) as FloatTensor)),
    E.bind('loss', ({ rewards }) => ranking({ backend: k })({ rewards, ranks: batch.ranks })),
    E.map(({ forward, rewards, loss }) => {
      const [B, K] = batch.ranks.shape as [number, number];
      const valid = (i: number) => batch.ranks.data[i]! >= 0;
      const grad = Float64Array.from(loss.grad.data);
      const sums = new Float64Array(B);
      for (let i = 0; i < B * K; i++) if (valid(i)) sums[Math.floor(i / K)]! += rewards.data[i]!;
      const center = centering(centerCoef, sums, (b, g) => {
        for (let i = b * K; i < (b + 1) * K; i++) if (valid(i)) grad[i]! += g;
      });
      const { mean, std } = meanStd(rewards.data, valid);
      return {
        stats: { loss: loss.loss + center, accuracy: loss.accuracy, pairs: loss.pairs, rewardMean: mean, rewardStd: std },
        backward: () => forward.backward(unsafeTensor('float64', [B * K], grad)),
      };
    }),
  );

const scorePairs =
  (model: RewardModel, k: Kernels, centerCoef: number, labelSmoothing: number) =>
  (batch: PairBatch): Result<Scored> =>
    pipe(
      E.Do,
      E.bind('chosen', () => model.scores(batch.chosen, batch.chosenMask)),
      E.bind('rejected', () => model.scores(batch.rejected, batch.rejectedMask)),
      E.bind('loss', ({ chosen, rejected }) =>
        pairwise({ backend: k, centerCoef, labelSmoothing })({
          chosen: chosen.output,
          rejected: rejected.output,
          margin: batch.margin ?? null,
        }),
      ),
      E.map(({ chosen, rejected, loss }) => {
        const all = Float64Array.from([...chosen.output.data, ...rejected.output.data]);
        const { mean, std } = meanStd(all);
        const back = (f: Forward<FloatTensor>, g: FloatTensor) => () => f.backward(g);
        return {
          stats: { loss: loss.loss, accuracy: loss.accuracy, pairs: chosen.output.data.length, rewardMean: mean, rewardStd: std },
          backward: () => pipe(back(chosen, loss.gradChosen)(), E.chain(back(rejected, loss.gradRejected))),
        };
      }),
    );

/**
 * A reward-model trainer on K-way rankings (the InstructGPT loss, with ties and padding) or on
 * pairs (Bradley–Terry with margin and label smoothing), both with optional reward centering.
 * A step is validate → score → backward → optimise; a bad batch fails at validate, before the model runs.
 */
export const rewardModelTrainer = (config: RewardModelTrainerConfig): Result<RewardModelTrainer> =>
  pipe(
    E.Do,
    E.bind('kernels', () => resolveBackend(config.backend)),
    E.bind('centerCoef', () => nonNegative('centerCoef', config.centerCoef, 0)),
    E.bind('labelSmoothing', () => nonNegative('labelSmoothing', config.labelSmoothing, 0)),
    E.bind('optimizer', () => adam(config.model.parameters, config.optimizer)),
    E.map(({ kernels, centerCoef, labelSmoothing, optimizer }) => {
      const { model } = config;
      const validate = stage('validate', (r: { batch: RankingBatch | PairBatch }) =>
        E.map((batch: RankingBatch | PairBatch) => ({ checked: batch }))(
          isRanking(r.batch) ? checkRankingBatch(r.batch, model.vocabSize) : checkPairBatch(r.batch, model.vocabSize),
        ),
      );
      const score = stage('score', (r: { checked: RankingBatch | PairBatch }) =>
        E.map((scored: Scored) => ({ scored }))(
          isRanking(r.checked)
            ? scoreRankings(model, kernels, centerCoef)(r.checked)
            : scorePairs(model, kernels, centerCoef, labelSmoothing)(r.checked),
        ),
      );
      const backward = stage('backward', (r: { scored: Scored }) => E.map(() => ({}))(r.scored.backward()));
      const optimize = stage('optimize', (_: object) => {
        const { gradNorm, lr } = optimizer.step();
        return E.right({ gradNorm, lr });
      });
      const evaluate = (batch: RankingBatch | PairBatch) =>
        pipe(start({ batch }), TE.chain(validate), TE.chain(score), TE.map((r) => r.scored.stats));
      const step = (batch: RankingBatch | PairBatch) =>
        pipe(
          start({ batch }),
          TE.chain(validate),
          TE.chain(score),
          TE.chain(backward),
          TE.chain(optimize),
          TE.map((r): RewardModelStats => ({ ...r.scored.stats, gradNorm: r.gradNorm, lr: r.lr })),
        );
      return { step, evaluate, optimizer };
    }),
  );
