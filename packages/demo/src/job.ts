import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { defaultBackend, type Kernels } from '@rlhf/kernels';
import { paramError, unsafeTensor, type IntTensor, type MaskTensor, type Result, type RlhfError } from '@rlhf/tensor';
import {
  adam,
  copyParameters,
  jsonlMetrics,
  meanStd,
  parameterCount,
  ppoTrainer,
  progressBar,
  rewardModelTrainer,
  rng as makeRng,
  sampleResponses,
  sumRows,
  takeRows,
  tokenLogprobs,
  trainPpo,
  warmupCosine,
  windowMlpPolicy,
  windowMlpReward,
  windowMlpValue,
  type KlControl,
  type MetricsLog,
  type Policy,
  type PpoStats,
  type RankingBatch,
  type RewardModel,
  type Rng,
  type WindowMlpConfig,
  type Checkpoint,
} from '@rlhf/trainers';
import { lineChartSvg } from './plot.js';
import { checkpointPath, metricsPath, parameterHash, writeRunFile, type PpoRunName, type ResumedRun, type RunFile } from './resume.js';
import { annotate, corpus, GOOD_TOKENS, hiddenUtility, makeWorld, samplePrompts, VOCAB, type World } from './world.js';

/** Every size of the job; `quick` is the smoke-test size. */
export interface JobSize {
  readonly corpusSize: number;
  readonly pretrainSteps: number;
  readonly pretrainBatch: number;
  readonly rmPrompts: number;
  readonly rmHeldOut: number;
  readonly rmK: number;
  readonly rmEpochs: number;
  readonly rmBatch: number;
  readonly ppoSteps: number;
  readonly ppoBatch: number;
  readonly ppoMinibatch: number;
  readonly evalPrompts: number;
}

export const SIZES: Record<'full' | 'quick', JobSize> = {
  full: {
    corpusSize: 4000,
    pretrainSteps: 300,
    pretrainBatch: 64,
    rmPrompts: 800,
    rmHeldOut: 200,
    rmK: 4,
    rmEpochs: 12,
    rmBatch: 32,
    ppoSteps: 120,
    ppoBatch: 64,
    ppoMinibatch: 16,
    evalPrompts: 1000,
  },
  quick: {
    corpusSize: 200,
    pretrainSteps: 10,
    pretrainBatch: 32,
    rmPrompts: 40,
    rmHeldOut: 20,
    rmK: 4,
    rmEpochs: 2,
    rmBatch: 20,
    ppoSteps: 3,
    ppoBatch: 16,
    ppoMinibatch: 8,
    evalPrompts: 32,
  },
};

export interface JobOptions {
  readonly seed: number;
  readonly outDir: string;
  readonly size: JobSize;
  /** The KL the adaptive controller steers to, in nats per response (default 2). */
  readonly klTarget?: number;
  /** The adaptive controller's initial β and horizon (defaults 1.5, near where it settles on this problem, and 256 samples). */
  readonly klInit?: number;
  readonly klHorizon?: number;
  /** PPO checkpoints are saved every this many steps and at the end of each run (default 20). */
  readonly checkpointEvery?: number;
  /** Continue this interrupted run (from `readRun(outDir)`) instead of starting afresh; see `resumeOptions`. */
  readonly resume?: ResumedRun;
  /**
   * Simulates a kill, for tests: the job stops right after logging this many PPO steps (counted in
   * this invocation, before that step's checkpoint is saved) and fails with an 'interrupted' message.
   */
  readonly stopAfterSteps?: number;
  readonly log?: (line: string) => void;
}

/** The options of the run `resume` continues: everything from its run.json. */
export const resumeOptions = (resume: ResumedRun, extra: Pick<JobOptions, 'log' | 'stopAfterSteps'> = {}): JobOptions => ({
  seed: resume.run.seed,
  outDir: resume.dir,
  size: resume.run.size,
  klTarget: resume.run.klTarget,
  klInit: resume.run.klInit,
  klHorizon: resume.run.klHorizon,
  checkpointEvery: resume.run.checkpointEvery,
  resume,
  ...extra,
});

/** Thrown inside the PPO loop by `stopAfterSteps` and turned into a Left right outside it. */
class Interrupted extends Error {}

export interface RunReport {
  readonly controller: KlControl;
  /** Mean hidden utility of the pretrained policy's responses to the evaluation prompts. */
  readonly utilityBefore: number;
  readonly utilityAfter: number;
  readonly utilityGain: number;
  readonly rmScoreBefore: number;
  readonly rmScoreAfter: number;
  /** Mean over evaluation responses of Σ_t (log π − log π_ref), in nats per response. */
  readonly klAfter: number;
  /** Mean of `klAfter` over the last quarter of training rollouts. */
  readonly klLastQuarter: number;
  readonly betaAfter: number;
  readonly goodTokensAfter: number;
  readonly repeatsAfter: number;
  readonly entropyAfter: number;
}

export interface Report {
  readonly seed: number;
  readonly backend: string;
  readonly wallSeconds: number;
  readonly sizes: JobSize;
  readonly world: { vocab: number; promptLength: number; responseLength: number; goodTokens: number[] };
  readonly pretrain: { parameters: number; finalLoss: number; chainEntropy: number };
  readonly rewardModel: {
    readonly parameters: number;
    readonly trainAccuracy: number;
    readonly heldOutAccuracy: number;
    readonly heldOutLoss: number;
    readonly heldOutPairs: number;
    /** Pearson correlation of reward-model score and hidden utility on the held-out responses. */
    readonly utilityCorrelation: number;
  };
  readonly kl: RunReport;
  readonly noKl: RunReport;
  readonly klTarget: number;
  /** Plain-language statements of what each run did, computed from the numbers above. */
  readonly findings: readonly string[];
}

const POLICY: WindowMlpConfig = { vocabSize: VOCAB, window: 3, embedDim: 8, hidden: 48 };
const REWARD: WindowMlpConfig = { vocabSize: VOCAB, window: 2, embedDim: 8, hidden: 32 };
const VALUE: WindowMlpConfig = { vocabSize: VOCAB, window: 3, embedDim: 8, hidden: 32 };

const fromEither = <A>(e: Result<A>): TE.TaskEither<RlhfError, A> => TE.fromEither(e);
const ones = (shape: readonly number[]): MaskTensor => unsafeTensor('uint8', shape, new Uint8Array(shape[0]! * shape[1]!).fill(1));

/** Supervised next-token pretraining on the corpus (cross-entropy through the logprobs kernels). */
const pretrain = (policy: Policy, kernels: Kernels, data: IntTensor, size: JobSize, rng: Rng, metrics: MetricsLog): Result<number> =>
  pipe(
    warmupCosine({ lr: 1e-2, warmupSteps: 10, totalSteps: size.pretrainSteps + 1, minLr: 1e-3 }),
    E.chain((lr) => adam(policy.parameters, { lr, maxGradNorm: 1 })),
    E.chain((opt) => {
      const [n, L] = data.shape as [number, number];
      const logprobs = tokenLogprobs(policy, kernels);
      const bar = progressBar('pretrain', size.pretrainSteps);
      let loss = NaN;
      for (let step = 0; step < size.pretrainSteps; step++) {
        const rows = Int32Array.from({ length: size.pretrainBatch }, () => rng.int(n));
        const batch = unsafeTensor('int32', [rows.length, L], new Int32Array(rows.length * L));
        rows.forEach((r, k) => batch.data.set(data.data.subarray(r * L, (r + 1) * L), k * L));
        const mask = ones(batch.shape);
        const N = rows.length * L;
        const out = logprobs(batch, mask);
        if (E.isLeft(out)) return out;
        loss = -Array.from(out.right.logprobs.data).reduce((a, b) => a + b, 0) / N;
        const back = out.right.backward(unsafeTensor('float64', [rows.length, L], new Float64Array(N).fill(-1 / N)));
        if (E.isLeft(back)) return back;
        opt.step();
        metrics.log({ phase: 'pretrain', step: step + 1, loss });
        bar.tick({ loss });
      }
      bar.stop();
      return E.right(loss);
    }),
  );

/** The chain's own per-token entropy under its stationary use in the corpus: the loss a perfect model reaches. */
const chainEntropy = (world: World, data: IntTensor): number => {
  const [n, L] = data.shape as [number, number];
  let h = 0;
  let count = 0;
  for (let i = 0; i < n; i++)
    for (let t = 1; t < L; t++) {
      const row = world.transitions.subarray(data.data[i * L + t - 1]! * VOCAB, (data.data[i * L + t - 1]! + 1) * VOCAB);
      const z = row.reduce((a, b) => a + b, 0);
      h -= Math.log(row[data.data[i * L + t]!]! / z);
      count++;
    }
  return (h + n * Math.log(VOCAB)) / (count + n); // position 0 is uniform
};

/** Rows [from, to) of a ranking batch. */
const sliceRanking = (b: RankingBatch, from: number, to: number): RankingBatch => {
  const [, K, L] = b.tokens.shape as [number, number, number];
  return {
    tokens: unsafeTensor('int32', [to - from, K, L], b.tokens.data.subarray(from * K * L, to * K * L)),
    mask: unsafeTensor(b.mask.dtype, [to - from, K, L], b.mask.data.subarray(from * K * L, to * K * L) as never) as MaskTensor,
    ranks: unsafeTensor('int32', [to - from, K], b.ranks.data.subarray(from * K, to * K)),
  };
};

/** K samples for each of n prompts from the policy, ranked by the annotator. */
const comparisons = (world: World, policy: Policy, n: number, k: number, rng: Rng): Result<RankingBatch> => {
  const prompts = samplePrompts(world)(rng, n);
  const P = world.promptLength;
  const repeated = unsafeTensor('int32', [n * k, P], new Int32Array(n * k * P));
  for (let i = 0; i < n * k; i++) repeated.data.set(prompts.data.subarray(Math.floor(i / k) * P, (Math.floor(i / k) + 1) * P), i * P);
  return E.map(({ tokens, mask }: { tokens: IntTensor; mask: MaskTensor }) => annotate(tokens, mask, k, rng))(
    sampleResponses(policy, repeated, world.responseLength, rng),
  );
};

const pearson = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  const ma = meanStd(a);
  const mb = meanStd(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i]! - ma.mean) * (b[i]! - mb.mean);
  return ma.std === 0 || mb.std === 0 ? 0 : c / a.length / (ma.std * mb.std);
};

const trainRewardModel = (
  rm: RewardModel,
  kernels: Kernels,
  train: RankingBatch,
  heldOut: RankingBatch,
  size: JobSize,
  rng: Rng,
  metrics: MetricsLog,
): TE.TaskEither<RlhfError, Report['rewardModel']> =>
  pipe(
    fromEither(rewardModelTrainer({ model: rm, optimizer: { lr: 5e-3, maxGradNorm: 5 }, backend: kernels })),
    TE.chain((trainer) => async () => {
      const B = train.ranks.shape[0]!;
      const bar = progressBar('reward model', size.rmEpochs);
      let trainAccuracy = 0;
      for (let epoch = 0; epoch < size.rmEpochs; epoch++) {
        // Shuffle prompts by slicing a permuted copy.
        const order = rng.permutation(B);
        const shuffled = permuteRanking(train, order);
        let acc = 0;
        let loss = 0;
        let batches = 0;
        for (let s = 0; s < B; s += size.rmBatch) {
          const out = await trainer.step(sliceRanking(shuffled, s, Math.min(B, s + size.rmBatch)))();
          if (E.isLeft(out)) return out;
          acc += out.right.accuracy;
          loss += out.right.loss;
          batches++;
        }
        const held = await trainer.evaluate(heldOut)();
        if (E.isLeft(held)) return held;
        trainAccuracy = acc / batches;
        metrics.log({ phase: 'rewardModel', epoch: epoch + 1, loss: loss / batches, accuracy: trainAccuracy, heldOutLoss: held.right.loss, heldOutAccuracy: held.right.accuracy, rewardMean: held.right.rewardMean, rewardStd: held.right.rewardStd });
        bar.tick({ acc: held.right.accuracy });
      }
      bar.stop();
      const held = await trainer.evaluate(heldOut)();
      if (E.isLeft(held)) return held;
      const [n, K, L] = heldOut.tokens.shape as [number, number, number];
      const flatTokens = unsafeTensor('int32', [n * K, L], heldOut.tokens.data);
      const flatMask = unsafeTensor(heldOut.mask.dtype, [n * K, L], heldOut.mask.data as never) as MaskTensor;
      const scores = rm.scores(flatTokens, flatMask);
      if (E.isLeft(scores)) return scores;
      return E.right({
        parameters: rm.parameters.reduce((s, p) => s + p.value.length, 0),
        trainAccuracy,
        heldOutAccuracy: held.right.accuracy,
        heldOutLoss: held.right.loss,
        heldOutPairs: held.right.pairs,
        utilityCorrelation: pearson(scores.right.output.data, hiddenUtility(flatTokens, flatMask)),
      });
    }),
  );

/** The prompts of a ranking batch in another order. */
const permuteRanking = (b: RankingBatch, order: Int32Array): RankingBatch => ({
  tokens: takeRows(b.tokens, order),
  mask: takeRows(b.mask, order),
  ranks: takeRows(b.ranks, order),
});

interface Evaluation {
  readonly utility: number;
  readonly rmScore: number;
  readonly kl: number;
  readonly goodTokens: number;
  readonly repeats: number;
  readonly entropy: number;
}

/** Samples the policy on fixed evaluation prompts with a fixed generator and measures it. */
const evaluate = (
  policy: Policy,
  reference: Policy,
  rm: RewardModel,
  kernels: Kernels,
  world: World,
  prompts: IntTensor,
  seed: number,
): Result<Evaluation> =>
  pipe(
    sampleResponses(policy, prompts, world.responseLength, makeRng(seed)),
    E.bindTo('s'),
    E.bind('scores', ({ s }) => rm.scores(s.tokens, s.mask)),
    E.bind('lp', ({ s }) => tokenLogprobs(policy, kernels)(s.tokens, s.mask)),
    E.bind('ref', ({ s }) => tokenLogprobs(reference, kernels)(s.tokens, s.mask)),
    E.map(({ s, scores, lp, ref }) => {
      const B = prompts.shape[0]!;
      const seqLp = sumRows(lp.logprobs, s.mask);
      const seqRef = sumRows(ref.logprobs, s.mask);
      let good = 0;
      let repeats = 0;
      const [, L] = s.tokens.shape as [number, number];
      for (let i = 0; i < s.tokens.data.length; i++) {
        if (s.mask.data[i] === 0) continue;
        if (GOOD_TOKENS.has(s.tokens.data[i]!)) good++;
        if (i % L > 0 && s.mask.data[i - 1] !== 0 && s.tokens.data[i - 1] === s.tokens.data[i]) repeats++;
      }
      return {
        utility: meanStd(hiddenUtility(s.tokens, s.mask)).mean,
        rmScore: meanStd(scores.output.data).mean,
        kl: seqLp.reduce((a, x, b) => a + x - seqRef[b]!, 0) / B,
        goodTokens: good / B,
        repeats: repeats / B,
        entropy: sumRows(lp.entropy, s.mask).reduce((a, b) => a + b, 0) / B,
      };
    }),
  );

const runPpo = (
  name: 'kl' | 'noKl',
  controller: KlControl,
  pretrained: Policy,
  rm: RewardModel,
  kernels: Kernels,
  world: World,
  size: JobSize,
  seed: number,
  metrics: MetricsLog,
  /** The held-out prompts and the generator seed of every evaluation: the same before and after. */
  evaluation: { readonly prompts: IntTensor; readonly seed: number },
  before: Evaluation,
  loop: {
    readonly outDir: string;
    readonly checkpointEvery: number;
    /** Where an interrupted run stopped: its checkpoint, and its statistics up to it. */
    readonly resumeFrom?: Checkpoint;
    readonly past: { readonly history: readonly PpoStats[]; readonly utility: readonly number[] };
    /** Called after each step is logged; throws `Interrupted` to simulate a kill. */
    readonly afterStep: () => void;
  },
): TE.TaskEither<RlhfError, { report: RunReport; history: PpoStats[]; utility: number[] }> => {
  const utility: number[] = [...loop.past.utility];
  return pipe(
    E.Do,
    E.bind('policy', () => windowMlpPolicy(POLICY, makeRng(0))),
    E.bind('value', () => windowMlpValue(VALUE, makeRng(seed + 17))),
    E.chainFirst(({ policy }) => copyParameters(pretrained, policy)),
    E.bind('trainer', ({ policy, value }) =>
      ppoTrainer({
        policy,
        reference: pretrained,
        value,
        rewardModel: rm,
        prompts: samplePrompts(world),
        responseLength: world.responseLength,
        batchSize: size.ppoBatch,
        minibatchSize: size.ppoMinibatch,
        epochs: 4,
        policyOptimizer: { lr: 2e-3, maxGradNorm: 1 },
        valueOptimizer: { lr: 5e-3, maxGradNorm: 1 },
        kl: controller,
        gamma: 1,
        lambda: 0.95,
        policyLoss: { clipLow: 0.2 },
        valueClip: 0.2,
        valueCoef: 0.5,
        entropyCoef: 0.0,
        seed,
        backend: kernels,
      }),
    ),
    E.chainFirst(({ trainer }) => (loop.resumeFrom ? trainer.restore(loop.resumeFrom) : E.right(undefined))),
    fromEither,
    TE.chain(({ policy, trainer }) => {
      const bar = progressBar(`PPO ${name}`, size.ppoSteps - trainer.stepCount());
      const loopTask = trainPpo(trainer, {
        steps: size.ppoSteps,
        checkpointPath: checkpointPath(loop.outDir, name),
        checkpointEvery: loop.checkpointEvery,
        onStep: ({ stats, rollout }) => {
          const u = meanStd(hiddenUtility(rollout.tokens, rollout.mask)).mean;
          utility.push(u);
          metrics.log({ phase: 'ppo', run: name, ...stats, utility: u });
          bar.tick({ score: stats.meanScore, kl: stats.kl, utility: u });
          loop.afterStep();
        },
      });
      const interruptible: TE.TaskEither<RlhfError, PpoStats[]> = () =>
        loopTask().catch((e: unknown) => {
          if (!(e instanceof Interrupted)) throw e;
          bar.stop();
          return E.left(paramError(e.message));
        });
      return pipe(
        interruptible,
        TE.map((fresh) => [...loop.past.history, ...fresh]),
        TE.chainFirst(() => TE.fromIO(() => bar.stop())),
        TE.chain((history) =>
          fromEither(
            E.map((after: Evaluation): { report: RunReport; history: PpoStats[]; utility: number[] } => {
              const tail = history.slice(Math.floor((history.length * 3) / 4));
              return {
                report: {
                  controller,
                  utilityBefore: before.utility,
                  utilityAfter: after.utility,
                  utilityGain: after.utility - before.utility,
                  rmScoreBefore: before.rmScore,
                  rmScoreAfter: after.rmScore,
                  klAfter: after.kl,
                  klLastQuarter: meanStd(tail.map((s) => s.kl)).mean,
                  betaAfter: trainer.beta(),
                  goodTokensAfter: after.goodTokens,
                  repeatsAfter: after.repeats,
                  entropyAfter: after.entropy,
                },
                history,
                utility,
              };
            })(evaluate(policy, pretrained, rm, kernels, world, evaluation.prompts, evaluation.seed)),
          ),
        ),
      );
    }),
  );
};

const f2 = (x: number) => x.toFixed(2);

/** What the numbers say, in words; no claim here is fixed in advance. */
const findings = (r: Report): string[] => {
  const { kl, noKl, klTarget } = r;
  const near = Math.abs(kl.klAfter - klTarget) <= 0.5 * klTarget;
  const out = [
    `With the adaptive KL controller the hidden utility went from ${f2(kl.utilityBefore)} to ${f2(kl.utilityAfter)} ` +
      `(${kl.utilityGain >= 0 ? '+' : ''}${f2(kl.utilityGain)}) at a KL of ${f2(kl.klAfter)} nats per response ` +
      `(${near ? 'near' : 'away from'} the target ${klTarget}; β ended at ${kl.betaAfter.toFixed(3)}).`,
  ];
  const hacked = noKl.utilityAfter < kl.utilityAfter;
  out.push(
    `With β = 0 the KL grew to ${f2(noKl.klAfter)} nats and the reward-model score to ${f2(noKl.rmScoreAfter)} ` +
      `(the KL run: ${f2(kl.rmScoreAfter)}), with ${f2(noKl.goodTokensAfter)} good tokens and ${f2(noKl.repeatsAfter)} repeats per response; ` +
      (hacked
        ? `its hidden utility is ${f2(noKl.utilityAfter)}, below the KL run's ${f2(kl.utilityAfter)}: it over-optimised the reward model, ` +
          'which never saw such responses in training.'
        : `its hidden utility is ${f2(noKl.utilityAfter)}, above the KL run's ${f2(kl.utilityAfter)}: far from the pretrained policy ` +
          'the reward model still ranked correctly here, so dropping the penalty paid off in this run.'),
  );
  return out;
};

/**
 * The whole RLHF recipe on the demo's world: pretrain a policy on the corpus, collect K-way rankings
 * of its samples from the simulated annotator, train a reward model on them, then run PPO against the
 * reward model twice, with the adaptive KL controller and with β = 0. Writes report.json,
 * metrics.jsonl and plot.svg into `outDir`.
 */
export const runJob =
  (options: JobOptions): TE.TaskEither<RlhfError, Report> =>
  () =>
    // Nothing happens until the task runs, and each run starts from the options alone (a task built
    // once and run twice must not continue from the first run's generator and models).
    jobTask(options)();

const jobTask = (options: JobOptions): TE.TaskEither<RlhfError, Report> => {
  const started = performance.now();
  const { seed, size, outDir } = options;
  const log = options.log ?? (() => {});
  const say = (line: string) => log(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}`);
  const klTarget = options.klTarget ?? 2;
  const klInit = options.klInit ?? 1.5;
  const klHorizon = options.klHorizon ?? 256;
  const checkpointEvery = options.checkpointEvery ?? 20;
  const { resume } = options;
  const kernels = defaultBackend();
  mkdirSync(outDir, { recursive: true });
  const runFile: RunFile = resume?.run ?? { format: 'rlhf-ts/demo-run', version: 1, seed, klTarget, klInit, klHorizon, checkpointEvery, size, backend: kernels.name };
  if (resume) {
    // Keep what the interrupted run logged up to its checkpoints; the rest is redone and appended.
    writeFileSync(metricsPath(outDir), resume.keptMetrics.map((l) => `${l}\n`).join(''));
  } else writeRunFile(outDir, runFile);
  const metrics = jsonlMetrics(metricsPath(outDir));
  // A resumed job recomputes pretraining and the reward model; their records are already in metrics.jsonl.
  const prefixMetrics: MetricsLog = resume?.run.prefix ? { path: metrics.path, log: () => {} } : metrics;
  let ppoStepsHere = 0;
  const afterStep = () => {
    if (++ppoStepsHere === options.stopAfterSteps) throw new Interrupted(`interrupted after ${ppoStepsHere} PPO steps (stopAfterSteps)`);
  };
  const ppoLoop = (name: PpoRunName) => {
    const from = resume?.checkpoints[name];
    if (from) say(`resuming PPO ${name} from its checkpoint at step ${from.step} of ${size.ppoSteps}`);
    return { outDir, checkpointEvery, resumeFrom: from, past: resume?.past[name] ?? { history: [], utility: [] }, afterStep };
  };
  /** Checks that a resumed job rebuilt the interrupted run's models bit for bit; records them in run.json on a first pass. */
  const checkPrefix = (policy: Policy, rm: RewardModel): Result<void> => {
    const prefix = { policySha256: parameterHash(policy), rewardModelSha256: parameterHash(rm) };
    const saved = runFile.prefix;
    if (saved === undefined) {
      writeRunFile(outDir, { ...runFile, prefix });
      return E.right(undefined);
    }
    if (saved.policySha256 === prefix.policySha256 && saved.rewardModelSha256 === prefix.rewardModelSha256) return E.right(undefined);
    return E.left(
      paramError(
        `cannot resume ${outDir}: the recomputed ${saved.policySha256 === prefix.policySha256 ? 'reward model' : 'pretrained policy'} differs from the interrupted run's ` +
          `(backend now ${kernels.name}, then ${runFile.backend})`,
      ),
    );
  };
  const master = makeRng(seed);
  const child = () => makeRng(master.int(2 ** 31));
  const world = makeWorld(child());

  return pipe(
    E.Do,
    E.bind('policy', () => windowMlpPolicy(POLICY, child())),
    E.bind('rm', () => windowMlpReward(REWARD, child())),
    E.bind('data', () => E.right(corpus(world, child(), size.corpusSize, world.promptLength + world.responseLength))),
    E.bind('pretrainLoss', ({ policy, data }) => {
      say(`pretraining a ${parameterCount(policy)}-parameter policy on ${size.corpusSize} sequences …`);
      return pretrain(policy, kernels, data, size, child(), prefixMetrics);
    }),
    E.bind('train', ({ policy }) => comparisons(world, policy, size.rmPrompts, size.rmK, child())),
    E.bind('heldOut', ({ policy }) => comparisons(world, policy, size.rmHeldOut, size.rmK, child())),
    fromEither,
    TE.bind('rmReport', ({ rm, train, heldOut }) => {
      say(`training the reward model on ${size.rmPrompts} prompts × ${size.rmK} ranked responses …`);
      return trainRewardModel(rm, kernels, train, heldOut, size, child(), prefixMetrics);
    }),
    TE.chainFirst(({ policy, rm }) => fromEither(checkPrefix(policy, rm))),
    TE.bind('evaluation', () => TE.right({ prompts: samplePrompts(world)(child(), size.evalPrompts), seed: seed + 99 })),
    TE.bind('before', ({ policy, rm, evaluation }) =>
      fromEither(evaluate(policy, policy, rm, kernels, world, evaluation.prompts, evaluation.seed)),
    ),
    TE.bind('ppoSeed', () => TE.right(master.int(2 ** 31))),
    TE.bind('klRun', ({ policy, rm, evaluation, before, ppoSeed }) => {
      say(`PPO with the adaptive KL controller (target ${klTarget} nats) …`);
      return runPpo('kl', { kind: 'adaptive', initKlCoef: klInit, target: klTarget, horizon: klHorizon }, policy, rm, kernels, world, size, ppoSeed, metrics, evaluation, before, ppoLoop('kl'));
    }),
    TE.bind('noKlRun', ({ policy, rm, evaluation, before, ppoSeed }) => {
      say('PPO with β = 0 (no KL penalty) …');
      return runPpo('noKl', { kind: 'fixed', beta: 0 }, policy, rm, kernels, world, size, ppoSeed, metrics, evaluation, before, ppoLoop('noKl'));
    }),
    TE.map(({ policy, data, pretrainLoss, rmReport, klRun, noKlRun }) => {
      const report: Report = {
        seed,
        backend: kernels.name,
        wallSeconds: (performance.now() - started) / 1000,
        sizes: size,
        world: { vocab: VOCAB, promptLength: world.promptLength, responseLength: world.responseLength, goodTokens: [...GOOD_TOKENS] },
        pretrain: { parameters: parameterCount(policy), finalLoss: pretrainLoss, chainEntropy: chainEntropy(world, data) },
        rewardModel: rmReport,
        kl: klRun.report,
        noKl: noKlRun.report,
        klTarget,
        findings: [],
      };
      const withFindings: Report = { ...report, findings: findings(report) };
      const steps = (xs: readonly number[]) => xs.map((y, i) => [i + 1, y] as const);
      const runs = [
        { label: 'adaptive KL', color: '#1f6fb4', run: klRun },
        { label: 'β = 0', color: '#d1495b', run: noKlRun },
      ];
      writeFileSync(
        join(outDir, 'plot.svg'),
        lineChartSvg(
          [
            { title: 'hidden utility (never seen by the trainer)', series: runs.map((r) => ({ label: r.label, color: r.color, points: steps(r.run.utility) })) },
            { title: 'reward-model score', series: runs.map((r) => ({ label: r.label, color: r.color, points: steps(r.run.history.map((s) => s.meanScore)) })) },
            {
              title: 'KL to the pretrained policy (nats/response)',
              series: [
                ...runs.map((r) => ({ label: r.label, color: r.color, points: steps(r.run.history.map((s) => s.kl)) })),
                { label: `target ${klTarget}`, color: '#555', dashed: true, points: [[1, klTarget], [Math.max(2, size.ppoSteps), klTarget]] as const },
              ],
            },
          ],
          'PPO step',
        ),
      );
      writeFileSync(join(outDir, 'report.json'), `${JSON.stringify(withFindings, null, 2)}\n`);
      return withFindings;
    }),
  );
};
