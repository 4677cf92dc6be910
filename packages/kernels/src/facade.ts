import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  booleanParam,
  emptyError,
  floatOfRank,
  integerParam,
  nonNegative,
  oneOf,
  outputBuffer,
  positive,
  separateOutputs,
  toRlhfError,
  total,
  unsafeTensor,
  type FloatTensor,
  type Result,
  type RlhfError,
} from '@rlhf/tensor';
import { DPO_LOSS_TYPES } from './raw.js';
import type {
  AsyncRawKernels,
  RawDpo,
  RawKlFull,
  RawKernels,
  RawLogprobs,
  RawLogprobsBackward,
  RawLogsoftmax,
  RawLogsoftmaxBackward,
  RawPairwise,
  RawRanking,
} from './raw.js';
import type {
  BackendName,
  DpoInputs,
  DpoOut,
  DpoOutputs,
  DpoParams,
  GradLogitsOut,
  GradLogitsOutputs,
  Kernels,
  KlFullInputs,
  KlFullOut,
  KlFullOutputs,
  KlFullParams,
  LogprobsBackwardInputs,
  LogprobsBackwardParams,
  LogprobsInputs,
  LogprobsOut,
  LogprobsOutputs,
  LogprobsParams,
  LogsoftmaxBackwardInputs,
  LogsoftmaxInputs,
  LogsoftmaxOut,
  LogsoftmaxOutputs,
  PairwiseInputs,
  PairwiseOut,
  PairwiseOutputs,
  PairwiseParams,
  RankingInputs,
  RankingOut,
  RankingOutputs,
  TemperatureParams,
} from './types.js';
import {
  checkLabels,
  checkHasPair,
  checkRanks,
  floatLike,
  int32Shaped,
  labelSmoothingParam,
  logitsRows,
  optionalFloatLike,
  temperatureParam,
} from './validate.js';

/** What a backend does itself, so that validation is not done twice. */
interface Context {
  readonly checksIndices: (dtype: FloatTensor['dtype']) => boolean;
}
const checkedHere = (ctx: Context, dtype: FloatTensor['dtype'], check: () => Result<void>): Result<void> =>
  ctx.checksIndices(dtype) ? E.right(undefined) : check();

/** Validated arguments for a raw kernel, and how to build the public result from what it returned. */
interface Prepared<A, R, O> {
  readonly args: A;
  readonly finish: (r: R) => Result<O>;
}

const runSync = <A, R, O>(prepared: Result<Prepared<A, R, O>>, kernel: (a: A) => R): Result<O> =>
  pipe(
    prepared,
    E.chain((p) =>
      pipe(
        E.tryCatch(() => kernel(p.args), toRlhfError),
        E.chain(p.finish),
      ),
    ),
  );

/**
 * The async form: when the task runs, the inputs are checked and the kernel starts in the same
 * synchronous step, so nothing can change an array between its check and the kernel's first read
 * (a task built and run later checks what is there when it runs, not what was there when it was built).
 */
const runAsync =
  <A, O>(prepare: () => Result<Prepared<A, void, O>>, kernel: (a: A) => Promise<void>): TE.TaskEither<RlhfError, O> =>
  async () => {
    const p = prepare();
    if (E.isLeft(p)) return p;
    const started = E.tryCatch(() => kernel(p.right.args), toRlhfError);
    if (E.isLeft(started)) return started;
    const done = await TE.tryCatch(() => started.right, toRlhfError)();
    return E.isLeft(done) ? done : p.right.finish();
  };

const ok = <O>(o: O) => (): Result<O> => E.right(o);

// ---- row kernels (SPEC §2) ---------------------------------------------------------------------

const prepareLogprobs =
  (ctx: Context) =>
  (params: LogprobsParams = {}, out: LogprobsOut = {}) =>
  (inputs: LogprobsInputs): Result<Prepared<RawLogprobs, void, LogprobsOutputs>> =>
    pipe(
      E.Do,
      E.bind('rows', () => logitsRows('logits', inputs?.logits)),
      E.bind('labels', ({ rows }) => int32Shaped([rows.N])('labels', inputs.labels)),
      E.bind('temperature', () => temperatureParam(params?.temperature)),
      E.bind('ignoreIndex', () => integerParam('ignoreIndex', params?.ignoreIndex, -100)),
      E.chainFirst(({ rows, labels, ignoreIndex }) => checkedHere(ctx, rows.t.dtype, () => checkLabels(labels.data, rows.V, ignoreIndex))),
      E.bind('logprobs', ({ rows }) => outputBuffer('logprobs', rows.t.dtype, rows.N, out?.logprobs)),
      E.bind('entropy', ({ rows }) => outputBuffer('entropy', rows.t.dtype, rows.N, out?.entropy)),
      E.bind('rowStats', ({ rows }) => outputBuffer('rowStats', rows.t.dtype, 3 * rows.N, out?.rowStats)),
      E.chainFirst(({ rows, labels, logprobs, entropy, rowStats }) =>
        separateOutputs({ logprobs, entropy, rowStats }, { logits: rows.t.data, labels: labels.data }),
      ),
      E.map(({ rows, labels, temperature, ignoreIndex, logprobs, entropy, rowStats }) => ({
        args: { logits: rows.t.data, labels: labels.data, N: rows.N, V: rows.V, temperature, ignoreIndex, logprobs, entropy, rowStats },
        finish: ok({
          logprobs: unsafeTensor(rows.t.dtype, [rows.N], logprobs) as FloatTensor,
          entropy: unsafeTensor(rows.t.dtype, [rows.N], entropy) as FloatTensor,
          rowStats: unsafeTensor(rows.t.dtype, [rows.N, 3], rowStats) as FloatTensor,
        }),
      })),
    );

const prepareLogprobsBackward =
  (ctx: Context) =>
  (params: LogprobsBackwardParams = {}, out: GradLogitsOut = {}) =>
  (inputs: LogprobsBackwardInputs): Result<Prepared<RawLogprobsBackward, void, GradLogitsOutputs>> =>
    pipe(
      E.Do,
      E.bind('rows', () => logitsRows('logits', inputs?.logits)),
      E.bind('labels', ({ rows }) => int32Shaped([rows.N])('labels', inputs.labels)),
      E.bind('gradLogprobs', ({ rows }) => floatLike([rows.N], rows.t.dtype)('gradLogprobs', inputs.gradLogprobs)),
      E.bind('gradEntropy', ({ rows }) => optionalFloatLike([rows.N], rows.t.dtype)('gradEntropy', inputs.gradEntropy)),
      E.bind('rowStats', ({ rows }) => optionalFloatLike([rows.N, 3], rows.t.dtype)('rowStats', inputs.rowStats)),
      E.bind('temperature', () => temperatureParam(params?.temperature)),
      E.bind('ignoreIndex', () => integerParam('ignoreIndex', params?.ignoreIndex, -100)),
      E.chainFirst(({ rows, labels, ignoreIndex }) => checkedHere(ctx, rows.t.dtype, () => checkLabels(labels.data, rows.V, ignoreIndex))),
      E.bind('inPlace', () => booleanParam('inPlace', params?.inPlace, false)),
      E.bind('gradLogits', ({ rows, inPlace }) =>
        outputBuffer('gradLogits', rows.t.dtype, rows.N * rows.V, inPlace ? rows.t.data : out?.gradLogits),
      ),
      E.chainFirst(({ rows, labels, gradLogprobs, gradEntropy, rowStats, gradLogits }) =>
        separateOutputs(
          { gradLogits },
          { logits: rows.t.data, labels: labels.data, gradLogprobs: gradLogprobs.data, gradEntropy: gradEntropy?.data, rowStats: rowStats?.data },
          [['gradLogits', 'logits']],
        ),
      ),
      E.map(({ rows, labels, gradLogprobs, gradEntropy, rowStats, temperature, ignoreIndex, gradLogits }) => ({
        args: {
          logits: rows.t.data,
          labels: labels.data,
          gradLogprobs: gradLogprobs.data,
          gradEntropy: gradEntropy?.data ?? null,
          rowStats: rowStats?.data ?? null,
          N: rows.N,
          V: rows.V,
          temperature,
          ignoreIndex,
          gradLogits,
        },
        finish: ok({ gradLogits: unsafeTensor(rows.t.dtype, [rows.N, rows.V], gradLogits) as FloatTensor }),
      })),
    );

const prepareLogsoftmax =
  (params: TemperatureParams = {}, out: LogsoftmaxOut = {}) =>
  (inputs: LogsoftmaxInputs): Result<Prepared<RawLogsoftmax, void, LogsoftmaxOutputs>> =>
    pipe(
      E.Do,
      E.bind('rows', () => logitsRows('logits', inputs?.logits)),
      E.bind('temperature', () => temperatureParam(params?.temperature)),
      E.bind('logsoftmax', ({ rows }) => outputBuffer('logsoftmax', rows.t.dtype, rows.N * rows.V, out?.logsoftmax)),
      E.chainFirst(({ rows, logsoftmax }) => separateOutputs({ logsoftmax }, { logits: rows.t.data }, [['logsoftmax', 'logits']])),
      E.map(({ rows, temperature, logsoftmax }) => ({
        args: { logits: rows.t.data, N: rows.N, V: rows.V, temperature, logsoftmax },
        finish: ok({ logsoftmax: unsafeTensor(rows.t.dtype, [rows.N, rows.V], logsoftmax) as FloatTensor }),
      })),
    );

const prepareLogsoftmaxBackward =
  (params: TemperatureParams = {}, out: GradLogitsOut = {}) =>
  (inputs: LogsoftmaxBackwardInputs): Result<Prepared<RawLogsoftmaxBackward, void, GradLogitsOutputs>> =>
    pipe(
      E.Do,
      E.bind('rows', () => logitsRows('logits', inputs?.logits)),
      E.bind('gradOutput', ({ rows }) => floatLike([rows.N, rows.V], rows.t.dtype)('gradOutput', inputs.gradOutput)),
      E.bind('temperature', () => temperatureParam(params?.temperature)),
      E.bind('gradLogits', ({ rows }) => outputBuffer('gradLogits', rows.t.dtype, rows.N * rows.V, out?.gradLogits)),
      E.chainFirst(({ rows, gradOutput, gradLogits }) =>
        separateOutputs({ gradLogits }, { logits: rows.t.data, gradOutput: gradOutput.data }, [
          ['gradLogits', 'logits'],
          ['gradLogits', 'gradOutput'],
        ]),
      ),
      E.map(({ rows, gradOutput, temperature, gradLogits }) => ({
        args: { logits: rows.t.data, gradOutput: gradOutput.data, N: rows.N, V: rows.V, temperature, gradLogits },
        finish: ok({ gradLogits: unsafeTensor(rows.t.dtype, [rows.N, rows.V], gradLogits) as FloatTensor }),
      })),
    );

const prepareKlFull =
  (params: KlFullParams = {}, out: KlFullOut = {}) =>
  (inputs: KlFullInputs): Result<Prepared<RawKlFull, void, KlFullOutputs>> =>
    pipe(
      E.Do,
      E.bind('rows', () => logitsRows('logitsP', inputs?.logitsP)),
      E.bind('logitsQ', ({ rows }) => floatLike([rows.N, rows.V], rows.t.dtype)('logitsQ', inputs.logitsQ)),
      E.bind('gradKl', ({ rows }) => optionalFloatLike([rows.N], rows.t.dtype)('gradKl', inputs.gradKl)),
      E.bind('savedStats', ({ rows }) => optionalFloatLike([rows.N, 5], rows.t.dtype)('rowStats', inputs.rowStats)),
      E.bind('temperature', () => temperatureParam(params?.temperature)),
      E.bind('kl', ({ rows }) => outputBuffer('kl', rows.t.dtype, rows.N, out?.kl)),
      E.bind('rowStats', ({ rows }) => outputBuffer('rowStats', rows.t.dtype, 5 * rows.N, out?.rowStats)),
      E.bind('withGrad', () => booleanParam('withGrad', params?.withGrad, true)),
      E.bind('gradLogitsP', ({ rows, withGrad }) =>
        withGrad ? outputBuffer('gradLogitsP', rows.t.dtype, rows.N * rows.V, out?.gradLogitsP) : E.right(null),
      ),
      E.chainFirst(({ rows, logitsQ, gradKl, savedStats, kl, rowStats, gradLogitsP }) =>
        separateOutputs(
          { kl, rowStats, gradLogitsP },
          { logitsP: rows.t.data, logitsQ: logitsQ.data, gradKl: gradKl?.data, rowStats: savedStats?.data },
          [
            ['gradLogitsP', 'logitsP'],
            ['gradLogitsP', 'logitsQ'],
          ],
        ),
      ),
      E.map(({ rows, logitsQ, gradKl, savedStats, temperature, kl, rowStats, gradLogitsP }) => ({
        args: {
          logitsP: rows.t.data,
          logitsQ: logitsQ.data,
          gradKl: gradKl?.data ?? null,
          savedStats: savedStats?.data ?? null,
          N: rows.N,
          V: rows.V,
          temperature,
          kl,
          gradLogitsP,
          rowStats,
        },
        finish: ok({
          kl: unsafeTensor(rows.t.dtype, [rows.N], kl) as FloatTensor,
          rowStats: unsafeTensor(rows.t.dtype, [rows.N, 5], rowStats) as FloatTensor,
          ...(gradLogitsP && { gradLogitsP: unsafeTensor(rows.t.dtype, [rows.N, rows.V], gradLogitsP) as FloatTensor }),
        }),
      })),
    );

// ---- preference losses (SPEC §1) ----------------------------------------------------------------

const vector = floatOfRank(1);

const preparePairwise =
  (params: PairwiseParams = {}, out: PairwiseOut = {}) =>
  (inputs: PairwiseInputs): Result<Prepared<RawPairwise, { loss: number; accuracy: number }, PairwiseOutputs>> =>
    pipe(
      E.Do,
      E.bind('chosen', () => vector('chosen', inputs?.chosen)),
      E.bind('rejected', ({ chosen }) => floatLike(chosen.shape, chosen.dtype)('rejected', inputs.rejected)),
      E.bind('margin', ({ chosen }) => optionalFloatLike(chosen.shape, chosen.dtype)('margin', inputs.margin)),
      E.bind('labelSmoothing', () => labelSmoothingParam(params?.labelSmoothing)),
      E.bind('centerCoef', () => nonNegative('centerCoef', params?.centerCoef, 0)),
      E.chainFirst(({ chosen }) => (chosen.data.length > 0 ? E.right(0) : E.left(emptyError('pairwise: the batch is empty')))),
      E.bind('gradChosen', ({ chosen }) => outputBuffer('gradChosen', chosen.dtype, chosen.data.length, out?.gradChosen)),
      E.bind('gradRejected', ({ chosen }) => outputBuffer('gradRejected', chosen.dtype, chosen.data.length, out?.gradRejected)),
      E.chainFirst(({ chosen, rejected, margin, gradChosen, gradRejected }) =>
        separateOutputs({ gradChosen, gradRejected }, { chosen: chosen.data, rejected: rejected.data, margin: margin?.data }),
      ),
      E.map(({ chosen, rejected, margin, labelSmoothing, centerCoef, gradChosen, gradRejected }) => ({
        args: {
          B: chosen.data.length,
          chosen: chosen.data,
          rejected: rejected.data,
          margin: margin?.data ?? null,
          labelSmoothing,
          centerCoef,
          gradChosen,
          gradRejected,
        },
        finish: ({ loss, accuracy }) =>
          E.right({
            loss,
            accuracy,
            gradChosen: unsafeTensor(chosen.dtype, chosen.shape, gradChosen) as FloatTensor,
            gradRejected: unsafeTensor(chosen.dtype, chosen.shape, gradRejected) as FloatTensor,
          }),
      })),
    );

const prepareRanking =
  (ctx: Context) =>
  (_params?: void, out: RankingOut = {}) =>
  (inputs: RankingInputs): Result<Prepared<RawRanking, { loss: number; accuracy: number; pairs: number }, RankingOutputs>> =>
    pipe(
      E.Do,
      E.bind('rewards', () => floatOfRank(2)('rewards', inputs?.rewards)),
      E.bind('ranks', ({ rewards }) => int32Shaped(rewards.shape)('ranks', inputs.ranks)),
      E.chainFirst(({ rewards, ranks }) => checkedHere(ctx, rewards.dtype, () => checkRanks(ranks.data, rewards.shape[1]!))),
      E.chainFirst(({ rewards, ranks }) => checkHasPair(ranks.data, rewards.shape[1]!)),
      E.bind('grad', ({ rewards }) => outputBuffer('grad', rewards.dtype, rewards.data.length, out?.grad)),
      E.chainFirst(({ rewards, ranks, grad }) => separateOutputs({ grad }, { rewards: rewards.data, ranks: ranks.data })),
      E.map(({ rewards, ranks, grad }) => ({
        args: { B: rewards.shape[0]!, K: rewards.shape[1]!, rewards: rewards.data, ranks: ranks.data, grad },
        finish: ({ loss, accuracy, pairs }) =>
          pairs === 0
            ? E.left(emptyError('ranking: no prompt has two slots of different rank, so there is no pair to compare'))
            : E.right({ loss, accuracy, pairs, grad: unsafeTensor(rewards.dtype, rewards.shape, grad) as FloatTensor }),
      })),
    );

const prepareDpo =
  (params: DpoParams = {}, out: DpoOut = {}) =>
  (inputs: DpoInputs): Result<Prepared<RawDpo, { loss: number; accuracy: number }, DpoOutputs>> =>
    pipe(
      E.Do,
      E.bind('pc', () => vector('policyChosen', inputs?.policyChosen)),
      E.bind('pr', ({ pc }) => floatLike(pc.shape, pc.dtype)('policyRejected', inputs.policyRejected)),
      E.bind('rc', ({ pc }) => floatLike(pc.shape, pc.dtype)('refChosen', inputs.refChosen)),
      E.bind('rr', ({ pc }) => floatLike(pc.shape, pc.dtype)('refRejected', inputs.refRejected)),
      E.bind('beta', () => positive('beta', params?.beta, 0.1)),
      E.bind('lossType', () => oneOf('lossType', params?.lossType, 'sigmoid', DPO_LOSS_TYPES)),
      E.bind('labelSmoothing', () => labelSmoothingParam(params?.labelSmoothing)),
      E.chainFirst(({ pc }) => (pc.data.length > 0 ? E.right(0) : E.left(emptyError('dpo: the batch is empty')))),
      E.bind('buffers', ({ pc }) =>
        pipe(
          E.Do,
          E.bind('gradPolicyChosen', () => outputBuffer('gradPolicyChosen', pc.dtype, pc.data.length, out?.gradPolicyChosen)),
          E.bind('gradPolicyRejected', () =>
            outputBuffer('gradPolicyRejected', pc.dtype, pc.data.length, out?.gradPolicyRejected),
          ),
          E.bind('rewardsChosen', () => outputBuffer('rewardsChosen', pc.dtype, pc.data.length, out?.rewardsChosen)),
          E.bind('rewardsRejected', () => outputBuffer('rewardsRejected', pc.dtype, pc.data.length, out?.rewardsRejected)),
        ),
      ),
      // Element i of every output depends on element i of the inputs alone: any exact aliasing is safe.
      E.chainFirst(({ pc, pr, rc, rr, buffers }) => {
        const inputs = { policyChosen: pc.data, policyRejected: pr.data, refChosen: rc.data, refRejected: rr.data };
        const pairs = Object.keys(buffers).flatMap((o) => Object.keys(inputs).map((i) => [o, i] as const));
        return separateOutputs(buffers, inputs, pairs);
      }),
      E.map(({ pc, pr, rc, rr, beta, lossType, labelSmoothing, buffers }) => ({
        args: {
          B: pc.data.length,
          policyChosen: pc.data,
          policyRejected: pr.data,
          refChosen: rc.data,
          refRejected: rr.data,
          beta,
          lossType,
          labelSmoothing,
          ...buffers,
        },
        finish: ({ loss, accuracy }) =>
          E.right({
            loss,
            accuracy,
            gradPolicyChosen: unsafeTensor(pc.dtype, pc.shape, buffers.gradPolicyChosen) as FloatTensor,
            gradPolicyRejected: unsafeTensor(pc.dtype, pc.shape, buffers.gradPolicyRejected) as FloatTensor,
            rewardsChosen: unsafeTensor(pc.dtype, pc.shape, buffers.rewardsChosen) as FloatTensor,
            rewardsRejected: unsafeTensor(pc.dtype, pc.shape, buffers.rewardsRejected) as FloatTensor,
          }),
      })),
    );

// ---- assembling a backend ----------------------------------------------------------------------

/** Validation that cannot throw: a getter that throws or a revoked Proxy among the arguments is a Left. */
const prepared = <P, I, A, R, O, Out>(
  prepare: (p?: P, o?: Out) => (i: I) => Result<Prepared<A, R, O>>,
  params: P | undefined,
  out: Out | undefined,
  inputs: I,
): Result<Prepared<A, R, O>> => total(prepare)(params, out)(inputs);

const sync =
  <P, I, A, R, O, Out>(prepare: (p?: P, o?: Out) => (i: I) => Result<Prepared<A, R, O>>, kernel: (a: A) => R) =>
  (params?: P, out?: Out) =>
  (inputs: I): Result<O> =>
    runSync(prepared(prepare, params, out, inputs), kernel);

const offload =
  <P, I, A, O, Out>(
    prepare: (p?: P, o?: Out) => (i: I) => Result<Prepared<A, void, O>>,
    kernel: ((a: A) => Promise<void>) | undefined,
    fallback: (a: A) => void,
  ) =>
  (params?: P, out?: Out) =>
  (inputs: I): TE.TaskEither<RlhfError, O> =>
    runAsync(() => prepared(prepare, params, out, inputs), kernel ?? (async (a: A) => fallback(a)));

/** Wraps a backend's raw kernels with validation, output allocation and typed errors. */
export const makeKernels = (name: BackendName, raw: RawKernels): Kernels => {
  const a: Partial<AsyncRawKernels> = raw.async ?? {};
  const ctx: Context = { checksIndices: raw.checksIndices ?? (() => false) };
  const prepareLogprobsHere = prepareLogprobs(ctx);
  const prepareLogprobsBackwardHere = prepareLogprobsBackward(ctx);
  return {
    name,
    logprobs: sync(prepareLogprobsHere, raw.logprobs),
    logprobsBackward: sync(prepareLogprobsBackwardHere, raw.logprobsBackward),
    logsoftmax: sync(prepareLogsoftmax, raw.logsoftmax),
    logsoftmaxBackward: sync(prepareLogsoftmaxBackward, raw.logsoftmaxBackward),
    klFull: sync(prepareKlFull, raw.klFull),
    pairwise: sync(preparePairwise, raw.pairwise),
    ranking: sync(prepareRanking(ctx), raw.ranking),
    dpo: sync(prepareDpo, raw.dpo),
    async: {
      logprobs: offload(prepareLogprobsHere, a.logprobs, raw.logprobs),
      logprobsBackward: offload(prepareLogprobsBackwardHere, a.logprobsBackward, raw.logprobsBackward),
      logsoftmax: offload(prepareLogsoftmax, a.logsoftmax, raw.logsoftmax),
      logsoftmaxBackward: offload(prepareLogsoftmaxBackward, a.logsoftmaxBackward, raw.logsoftmaxBackward),
      klFull: offload(prepareKlFull, a.klFull, raw.klFull),
    },
  };
};
