import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { gae, whiten } from '@rlhf/gae';
import { resolveBackend, type BackendName, type Kernels } from '@rlhf/kernels';
import { adaptiveKlController, fixedKlController, shapeRewards, type KlController, type KlEstimator } from '@rlhf/kl';
import { stage, start } from '@rlhf/pipeline';
import { ppoLoss, type Aggregation, type PolicyLossParams } from '@rlhf/ppo';
import {
  emptyError,
  guarded,
  integerParam,
  paramError,
  shapeError,
  unsafeTensor,
  type FloatTensor,
  type IntTensor,
  type MaskTensor,
  type Result,
  type RlhfError,
} from '@rlhf/tensor';
import { makeCheckpoint, restoreCheckpoint, saveCheckpoint, type Checkpoint, type Json } from './checkpoint.js';
import { tokenLogprobs } from './logprobs.js';
import { meanStd } from './metrics.js';
import { checkTokens, type Policy, type RewardModel, type ValueModel } from './model.js';
import { adam, type Adam, type AdamParams } from './optim/adam.js';
import { isRngState, rng as makeRng, type Rng } from './rng.js';
import { takeRows } from './rows.js';

export type KlControl =
  | { readonly kind: 'fixed'; readonly beta: number }
  | { readonly kind: 'adaptive'; readonly initKlCoef: number; readonly target: number; readonly horizon: number };

export interface PpoConfig {
  readonly policy: Policy;
  /** The frozen reference policy of the KL penalty (the policy before RL); never updated. */
  readonly reference: Policy;
  readonly value: ValueModel;
  readonly rewardModel: RewardModel;
  /** Draws a batch of prompts [B, P] (int32) from the trainer's generator, so that runs are reproducible. */
  readonly prompts: (rng: Rng, batchSize: number) => IntTensor;
  /** Tokens sampled after each prompt. */
  readonly responseLength: number;
  readonly batchSize: number;
  readonly minibatchSize: number;
  /** Passes over each batch (default 4). */
  readonly epochs?: number;
  readonly policyOptimizer: AdamParams;
  readonly valueOptimizer: AdamParams;
  readonly kl: KlControl;
  /** Per-token KL estimator of the penalty (default k1, as in Ziegler et al.). */
  readonly klEstimator?: KlEstimator;
  readonly gamma?: number;
  readonly lambda?: number;
  readonly policyLoss?: PolicyLossParams;
  /** Value clipping range (default 0.2; null: no clipping). */
  readonly valueClip?: number | null;
  readonly valueCoef?: number;
  readonly entropyCoef?: number;
  readonly aggregation?: Aggregation;
  readonly seed: number;
  readonly backend?: Kernels | BackendName | null;
}

/** Statistics of one PPO step (TRL's names in comments where they differ). */
export interface PpoStats {
  readonly step: number;
  readonly policyLoss: number;
  readonly valueLoss: number;
  readonly entropy: number;
  /** Fraction of tokens where the clipped branch of the surrogate was taken. */
  readonly clipFrac: number;
  readonly valueClipFrac: number;
  /** ½·mean (log π − log π_old)² over the update. */
  readonly approxKl: number;
  /** Mean over sequences of Σ_t (log π − log π_ref) on the rollout (objective/kl). */
  readonly kl: number;
  /** β used to shape this step's rewards. */
  readonly beta: number;
  /** Mean reward-model score of the rollout. */
  readonly meanScore: number;
  /** Mean of the KL part of the shaped rewards, summed over each sequence. */
  readonly meanNonScoreReward: number;
  readonly explainedVariance: number;
  readonly policyGradNorm: number;
  readonly valueGradNorm: number;
  readonly lr: number;
}

/** The rollout of a step, for callers that evaluate it with something the trainer never sees. */
export interface PpoRollout {
  readonly tokens: IntTensor;
  readonly mask: MaskTensor;
  readonly scores: FloatTensor;
}

export interface PpoTrainer {
  readonly step: () => TE.TaskEither<RlhfError, { stats: PpoStats; rollout: PpoRollout }>;
  /** Steps done so far. */
  readonly stepCount: () => number;
  readonly beta: () => number;
  readonly checkpoint: () => Checkpoint;
  /** Continues exactly where the checkpointed trainer stopped (same models, optimisers, generator, β). */
  readonly restore: (ckpt: Checkpoint) => Result<void>;
  /** Samples responses to `prompts` from the current policy (no training), e.g. for evaluation. */
  readonly sample: (prompts: IntTensor, rng: Rng) => Result<{ tokens: IntTensor; mask: MaskTensor }>;
}

/** Samples `length` tokens after each prompt from the policy, one position at a time (temperature 1). */
export const sampleResponses = (
  policy: Policy,
  prompts: IntTensor,
  length: number,
  rng: Rng,
): Result<{ tokens: IntTensor; mask: MaskTensor }> => {
  const [B, P] = prompts.shape as [number, number];
  const L = P + length;
  const V = policy.vocabSize;
  const data = new Int32Array(B * L);
  const mask = new Uint8Array(B * L);
  for (let b = 0; b < B; b++) {
    data.set(prompts.data.subarray(b * P, (b + 1) * P), b * L);
    mask.fill(1, b * L + P, (b + 1) * L);
  }
  const tokens = unsafeTensor('int32', [B, L], data);
  const weights = new Float64Array(V);
  for (let t = P; t < L; t++) {
    const f = policy.logits(tokens);
    if (E.isLeft(f)) return f;
    const logits = f.right.output.data;
    for (let b = 0; b < B; b++) {
      const row = (b * L + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[row + v]!);
      for (let v = 0; v < V; v++) weights[v] = Math.exp(logits[row + v]! - max);
      data[b * L + t] = rng.categorical(weights);
    }
  }
  return E.right({ tokens, mask: unsafeTensor('uint8', [B, L], mask) });
};

/** 1 − Var(returns − values) / Var(returns) over the mask (how much of the return the value model explains). */
const explainedVariance = (values: FloatTensor, returns: FloatTensor, mask: MaskTensor): number => {
  const on = (i: number) => mask.data[i] !== 0;
  const residual = Float64Array.from(returns.data, (r, i) => r - values.data[i]!);
  const varReturns = meanStd(returns.data, on).std ** 2;
  return varReturns === 0 ? 0 : 1 - meanStd(residual, on).std ** 2 / varReturns;
};

/** Σ_t (logprobs − refLogprobs) per sequence, averaged over sequences: the KL the controller steers. */
const sequenceKl = (logprobs: FloatTensor, refLogprobs: FloatTensor, mask: MaskTensor): number => {
  const B = mask.shape[0]!;
  let s = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== 0) s += logprobs.data[i]! - refLogprobs.data[i]!;
  return s / B;
};

const controllerFrom = (c: KlControl, beta?: number): Result<KlController> =>
  c.kind === 'fixed'
    ? fixedKlController(c.beta)
    : adaptiveKlController({ initKlCoef: beta ?? c.initKlCoef, target: c.target, horizon: c.horizon });

const checkConfig = (c: PpoConfig): Result<void> => {
  const ints = [
    integerParam('batchSize', c.batchSize, 0),
    integerParam('minibatchSize', c.minibatchSize, 0),
    integerParam('responseLength', c.responseLength, 0),
    integerParam('epochs', c.epochs, 4),
  ];
  const bad = ints.find(E.isLeft);
  if (bad) return bad as E.Left<RlhfError>;
  if (c.batchSize < 1 || c.minibatchSize < 1 || c.responseLength < 1 || (c.epochs ?? 4) < 1)
    return E.left(paramError('batchSize, minibatchSize, responseLength and epochs must be ≥ 1'));
  if (c.minibatchSize > c.batchSize) return E.left(paramError(`minibatchSize ${c.minibatchSize} > batchSize ${c.batchSize}`));
  for (const [name, m] of [['reference', c.reference], ['value', c.value], ['rewardModel', c.rewardModel]] as const)
    if (m.vocabSize !== c.policy.vocabSize)
      return E.left(paramError(`${name} vocabulary ${m.vocabSize} ≠ policy vocabulary ${c.policy.vocabSize}`));
  return E.right(undefined);
};

/**
 * PPO for language models in the InstructGPT / Ziegler et al. (2019) form. One step reads like the
 * algorithm: prompts → rollout → score → referenceLogprobs → values → shapeRewards (KL penalty with a
 * fixed or adaptive β) → advantages (GAE) → whiten → update (epochs over minibatches of the clipped
 * policy loss, clipped value loss and entropy bonus, each followed by Adam steps) → controller.
 */
export const ppoTrainer = (config: PpoConfig): Result<PpoTrainer> =>
  pipe(
    checkConfig(config),
    E.bind('kernels', () => resolveBackend(config.backend)),
    E.bind('policyOpt', () => adam(config.policy.parameters, config.policyOptimizer)),
    E.bind('valueOpt', () => adam(config.value.parameters, config.valueOptimizer)),
    E.bind('initialController', () => controllerFrom(config.kl)),
    E.map(({ kernels, policyOpt, valueOpt, initialController }) => {
      const { policy, reference, value, rewardModel } = config;
      const epochs = config.epochs ?? 4;
      let controller = initialController;
      let stepsDone = 0;
      let rng = makeRng(config.seed);
      const policyLp = tokenLogprobs(policy, kernels);
      const referenceLp = tokenLogprobs(reference, kernels);
      const lossParams = {
        policy: config.policyLoss ?? null,
        value: { clipRange: config.valueClip === undefined ? 0.2 : config.valueClip },
        valueCoef: config.valueCoef ?? 0.5,
        entropyCoef: config.entropyCoef ?? 0,
        aggregation: config.aggregation ?? 'token-mean',
      };

      const prompts = stage('prompts', (_: object) =>
        pipe(
          checkTokens('prompts', config.prompts(rng, config.batchSize), policy.vocabSize),
          E.chain((p) =>
            p.shape[0] === config.batchSize && p.shape[1]! > 0
              ? E.right({ prompts: p })
              : E.left(emptyError(`prompts: expected [${config.batchSize}, P ≥ 1], got [${p.shape}]`)),
          ),
        ),
      );
      const rollout = stage('rollout', (r: { prompts: IntTensor }) =>
        pipe(
          sampleResponses(policy, r.prompts, config.responseLength, rng),
          // The sampling policy's log-probs, recomputed in one pass: these are π_old of the update.
          E.chain(({ tokens, mask }) => E.map((lp: { logprobs: FloatTensor }) => ({ tokens, mask, logprobs: lp.logprobs }))(policyLp(tokens, mask))),
        ),
      );
      const score = stage('score', (r: { tokens: IntTensor; mask: MaskTensor }) =>
        E.map((f: { output: FloatTensor }) => ({ scores: f.output }))(rewardModel.scores(r.tokens, r.mask)),
      );
      const referenceLogprobs = stage('referenceLogprobs', (r: { tokens: IntTensor; mask: MaskTensor }) =>
        E.map((lp: { logprobs: FloatTensor }) => ({ refLogprobs: lp.logprobs }))(referenceLp(r.tokens, r.mask)),
      );
      const values = stage('values', (r: { tokens: IntTensor }) =>
        E.map((f: { output: FloatTensor }) => ({ values: f.output }))(value.values(r.tokens)),
      );
      const shape = stage(
        'shapeRewards',
        (r: { scores: FloatTensor; logprobs: FloatTensor; refLogprobs: FloatTensor; mask: MaskTensor }) =>
          E.map((o: { rewards: FloatTensor; nonScoreRewards: FloatTensor }) => ({ ...o, beta: controller.beta }))(
            shapeRewards({ beta: controller.beta, estimator: config.klEstimator ?? 'k1' })(r),
          ),
      );
      const advantages = stage('advantages', (r: { rewards: FloatTensor; values: FloatTensor; mask: MaskTensor }) =>
        E.map((o: { advantages: FloatTensor; returns: FloatTensor }) => ({ rawAdvantages: o.advantages, returns: o.returns }))(
          gae({ gamma: config.gamma ?? 1, lambda: config.lambda ?? 0.95 })({ rewards: r.rewards, values: r.values, mask: r.mask }),
        ),
      );
      const whitened = stage('whiten', (r: { rawAdvantages: FloatTensor; mask: MaskTensor }) =>
        E.map((o: { y: FloatTensor }) => ({ advantages: o.y }))(whiten({ shiftMean: true })({ x: r.rawAdvantages, mask: r.mask })),
      );
      const update = stage(
        'update',
        (r: {
          tokens: IntTensor;
          mask: MaskTensor;
          logprobs: FloatTensor;
          values: FloatTensor;
          advantages: FloatTensor;
          returns: FloatTensor;
        }): Result<{ update: Omit<PpoStats, 'step' | 'kl' | 'beta' | 'meanScore' | 'meanNonScoreReward' | 'explainedVariance'> }> => {
          const sums = { policyLoss: 0, valueLoss: 0, entropy: 0, clipFrac: 0, valueClipFrac: 0, approxKl: 0, policyGradNorm: 0, valueGradNorm: 0, lr: 0 };
          let n = 0;
          for (let epoch = 0; epoch < epochs; epoch++) {
            const order = rng.permutation(config.batchSize);
            for (let s = 0; s < config.batchSize; s += config.minibatchSize) {
              const rows = order.subarray(s, Math.min(s + config.minibatchSize, config.batchSize));
              const mb = {
                tokens: takeRows(r.tokens, rows),
                mask: takeRows(r.mask, rows),
                oldLogprobs: takeRows(r.logprobs, rows),
                oldValues: takeRows(r.values, rows),
                advantages: takeRows(r.advantages, rows),
                returns: takeRows(r.returns, rows),
              };
              const result = pipe(
                E.Do,
                E.bind('lp', () => policyLp(mb.tokens, mb.mask)),
                E.bind('v', () => value.values(mb.tokens)),
                E.bind('loss', ({ lp, v }) =>
                  ppoLoss(lossParams)({
                    logprobs: lp.logprobs,
                    oldLogprobs: mb.oldLogprobs,
                    advantages: mb.advantages,
                    values: v.output,
                    oldValues: mb.oldValues,
                    returns: mb.returns,
                    mask: mb.mask,
                    entropy: lp.entropy,
                  }),
                ),
                E.chainFirst(({ lp, loss }) => lp.backward(loss.gradLogprobs, loss.gradEntropy)),
                E.chainFirst(({ v, loss }) => v.backward(loss.gradValues)),
              );
              if (E.isLeft(result)) return result;
              const { loss } = result.right;
              const p = policyOpt.step();
              const v = valueOpt.step();
              sums.policyLoss += loss.policy.loss;
              sums.valueLoss += loss.value.loss;
              sums.entropy += loss.entropy;
              sums.clipFrac += loss.policy.clipFrac;
              sums.valueClipFrac += loss.value.clipFrac;
              sums.approxKl += loss.policy.approxKl;
              sums.policyGradNorm += p.gradNorm;
              sums.valueGradNorm += v.gradNorm;
              sums.lr += p.lr;
              n++;
            }
          }
          const avg = Object.fromEntries(Object.entries(sums).map(([k, x]) => [k, x / n])) as typeof sums;
          return E.right({ update: avg });
        },
      );

      const step = () =>
        pipe(
          start({}),
          TE.chain(prompts),
          TE.chain(rollout),
          TE.chain(score),
          TE.chain(referenceLogprobs),
          TE.chain(values),
          TE.chain(shape),
          TE.chain(advantages),
          TE.chain(whitened),
          TE.chain(update),
          TE.chainEitherK((r) => {
            const kl = sequenceKl(r.logprobs, r.refLogprobs, r.mask);
            return pipe(
              controller.update(kl, config.batchSize),
              E.map((next) => {
                controller = next;
                stepsDone++;
                const stats: PpoStats = {
                  step: stepsDone,
                  ...r.update,
                  kl,
                  beta: r.beta,
                  meanScore: meanStd(r.scores.data).mean,
                  meanNonScoreReward: (Array.from(r.nonScoreRewards.data).reduce((a, b) => a + b, 0)) / config.batchSize,
                  explainedVariance: explainedVariance(r.values, r.returns, r.mask),
                };
                return { stats, rollout: { tokens: r.tokens, mask: r.mask, scores: r.scores } };
              }),
            );
          }),
        );

      const checkpoint = (): Checkpoint =>
        makeCheckpoint({
          step: stepsDone,
          models: { policy, value },
          optimizers: { policy: policyOpt, value: valueOpt },
          rng,
          extra: { beta: controller.beta, controller: config.kl.kind } as Json,
        });

      const restore = (ckpt: Checkpoint): Result<void> =>
        guarded(() => {
          // Check the trainer's own state first (β, its generator's four words, the KL controller's kind),
          // so that a checkpoint that lacks it changes nothing; restoreCheckpoint checks the rest before it writes.
          const { beta, controller: kind } = (ckpt.extra ?? {}) as { beta?: unknown; controller?: unknown };
          if (typeof beta !== 'number' || ckpt.rng === null) return E.left(paramError('checkpoint lacks the PPO trainer state (β, generator)'));
          if (!isRngState(ckpt.rng)) return E.left(shapeError('checkpoint: the generator state is not four 32-bit words'));
          if (kind !== config.kl.kind)
            return E.left(paramError(`checkpoint is of a run with a ${String(kind)} KL controller, this trainer's is ${config.kl.kind}`));
          return pipe(
            controllerFrom(config.kl, beta),
            E.chain((c) =>
              E.map(({ step, rng: state }: { step: number; rng: readonly number[] | null }) => {
                controller = c;
                stepsDone = step;
                rng = makeRng(state!);
              })(restoreCheckpoint(ckpt, { models: { policy, value }, optimizers: { policy: policyOpt, value: valueOpt } })),
            ),
          );
        });

      return {
        step,
        stepCount: () => stepsDone,
        beta: () => controller.beta,
        checkpoint,
        restore,
        sample: (p: IntTensor, r: Rng) =>
          pipe(checkTokens('prompts', p, policy.vocabSize), E.chain((pp) => sampleResponses(policy, pp, config.responseLength, r))),
      };
    }),
  );

export interface TrainLoopOptions {
  /** Train until the trainer has done this many steps (a resumed trainer continues from its count). */
  readonly steps: number;
  readonly onStep?: (out: { stats: PpoStats; rollout: PpoRollout }) => void;
  /** Save a checkpoint here every `checkpointEvery` steps and at the end. */
  readonly checkpointPath?: string;
  readonly checkpointEvery?: number;
}

/** Runs PPO steps until `steps`, saving checkpoints on the way; stops at the first error. */
export const trainPpo = (trainer: PpoTrainer, options: TrainLoopOptions): TE.TaskEither<RlhfError, PpoStats[]> => async () => {
  const all: PpoStats[] = [];
  const every = options.checkpointEvery ?? 0;
  while (trainer.stepCount() < options.steps) {
    const out = await trainer.step()();
    if (E.isLeft(out)) return out;
    all.push(out.right.stats);
    options.onStep?.(out.right);
    const n = trainer.stepCount();
    if (options.checkpointPath && ((every > 0 && n % every === 0) || n === options.steps)) {
      const saved = await saveCheckpoint(options.checkpointPath, trainer.checkpoint())();
      if (E.isLeft(saved)) return saved;
    }
  }
  return E.right(all);
};
