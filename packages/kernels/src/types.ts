import type * as E from 'fp-ts/lib/Either.js';
import type * as TE from 'fp-ts/lib/TaskEither.js';
import type { FloatArray, FloatTensor, IntTensor, RlhfError } from '@rlhf/tensor';
import type { DpoLossType } from './raw.js';

export type BackendName = 'js' | 'cpu' | 'cuda';

/** An operation in data-last form: parameters first, then the inputs, as `pipe` wants. */
export type Op<P, I, O, Out> = (params?: P, out?: Out) => (inputs: I) => E.Either<RlhfError, O>;
export type AsyncOp<P, I, O, Out> = (params?: P, out?: Out) => (inputs: I) => TE.TaskEither<RlhfError, O>;

export interface TemperatureParams {
  /** T > 0, default 1: `z = logits / T`. */
  readonly temperature?: number | null;
}

export interface LogprobsParams extends TemperatureParams {
  /** Rows whose label equals it output 0 (default −100). */
  readonly ignoreIndex?: number | null;
}
export interface LogprobsInputs {
  readonly logits: FloatTensor;
  readonly labels: IntTensor;
}
export interface LogprobsOutputs {
  readonly logprobs: FloatTensor;
  readonly entropy: FloatTensor;
  /**
   * [N, 3]: what `logprobsBackward` needs of each row, so that it reads the logits once instead of
   * twice: `(m, s, H)` with m a pivot near the row's maximum logit, `s = log Σ_v e^{(x_v − m)/T}`
   * (so `lse = m/T + s`, without rounding a large m/T) and H the entropy. Ignored rows give (0, 0, 0).
   */
  readonly rowStats: FloatTensor;
}
export interface LogprobsOut {
  readonly logprobs?: FloatArray;
  readonly entropy?: FloatArray;
  readonly rowStats?: FloatArray;
}

export interface LogprobsBackwardParams extends LogprobsParams {
  /** Write the gradient over the logits buffer (saves N·V·4 bytes; the logits are lost). Opt-in only. */
  readonly inPlace?: boolean;
}
export interface LogprobsBackwardInputs extends LogprobsInputs {
  readonly gradLogprobs: FloatTensor;
  readonly gradEntropy?: FloatTensor | null;
  /**
   * The forward's `rowStats` for these logits at this temperature (from any backend): the backward
   * then skips its statistics pass. Absent: recomputed.
   */
  readonly rowStats?: FloatTensor | null;
}
export interface GradLogitsOutputs {
  readonly gradLogits: FloatTensor;
}
export interface GradLogitsOut {
  readonly gradLogits?: FloatArray;
}

export interface LogsoftmaxInputs {
  readonly logits: FloatTensor;
}
export interface LogsoftmaxOutputs {
  readonly logsoftmax: FloatTensor;
}
export interface LogsoftmaxOut {
  readonly logsoftmax?: FloatArray;
}
export interface LogsoftmaxBackwardInputs {
  readonly logits: FloatTensor;
  readonly gradOutput: FloatTensor;
}

export interface KlFullParams extends TemperatureParams {
  /** Skip the [N,V] gradient (then `gradLogitsP` is absent). Default true. */
  readonly withGrad?: boolean;
}
export interface KlFullInputs {
  readonly logitsP: FloatTensor;
  readonly logitsQ: FloatTensor;
  readonly gradKl?: FloatTensor | null;
  /**
   * A forward's `rowStats` for these logits at this temperature (from any backend): `kl` is taken from
   * them and the gradient is written in one pass over both rows, with no statistics pass.
   */
  readonly rowStats?: FloatTensor | null;
}
export interface KlFullOutputs {
  readonly kl: FloatTensor;
  readonly gradLogitsP?: FloatTensor;
  /**
   * [N, 5]: what the gradient needs of each row pair, to compute it later from them alone:
   * `(mp, sp, r, μ, kl)` with mp a pivot near the maximum of logitsP, `sp = log Σ_v e^{(xp_v − mp)/T}`,
   * r = logitsQ where logitsP is maximal (0 where that is not finite), `μ = Σ_v p_v·((xp_v − mp) − (xq_v − r))`
   * and kl; then `log p − log q − kl = ((xp − mp) − (xq − r) − μ)/T`.
   */
  readonly rowStats: FloatTensor;
}
export interface KlFullOut {
  readonly kl?: FloatArray;
  readonly gradLogitsP?: FloatArray;
  readonly rowStats?: FloatArray;
}

export interface PairwiseParams {
  /** ε ∈ [0, 0.5), default 0. */
  readonly labelSmoothing?: number | null;
  /** c ≥ 0, default 0 (TRL's reward-centering coefficient). */
  readonly centerCoef?: number | null;
}
export interface PairwiseInputs {
  readonly chosen: FloatTensor;
  readonly rejected: FloatTensor;
  readonly margin?: FloatTensor | null;
}
export interface PairwiseOutputs {
  readonly loss: number;
  readonly gradChosen: FloatTensor;
  readonly gradRejected: FloatTensor;
  readonly accuracy: number;
}
export interface PairwiseOut {
  readonly gradChosen?: FloatArray;
  readonly gradRejected?: FloatArray;
}

export interface RankingInputs {
  /** [B, K] */
  readonly rewards: FloatTensor;
  /** [B, K] int32: smaller = preferred, equal = tie, −1 = padded slot. */
  readonly ranks: IntTensor;
}
export interface RankingOutputs {
  readonly loss: number;
  readonly grad: FloatTensor;
  readonly accuracy: number;
  /** Number of ordered pairs in the batch. */
  readonly pairs: number;
}
export interface RankingOut {
  readonly grad?: FloatArray;
}

export interface DpoParams {
  /** β > 0, default 0.1. */
  readonly beta?: number | null;
  readonly lossType?: DpoLossType | null;
  /** ε ∈ [0, 0.5), default 0 (sigmoid loss only). */
  readonly labelSmoothing?: number | null;
}
export interface DpoInputs {
  readonly policyChosen: FloatTensor;
  readonly policyRejected: FloatTensor;
  readonly refChosen: FloatTensor;
  readonly refRejected: FloatTensor;
}
export interface DpoOutputs {
  readonly loss: number;
  readonly gradPolicyChosen: FloatTensor;
  readonly gradPolicyRejected: FloatTensor;
  readonly rewardsChosen: FloatTensor;
  readonly rewardsRejected: FloatTensor;
  readonly accuracy: number;
}
export interface DpoOut {
  readonly gradPolicyChosen?: FloatArray;
  readonly gradPolicyRejected?: FloatArray;
  readonly rewardsChosen?: FloatArray;
  readonly rewardsRejected?: FloatArray;
}

/**
 * The heavy operations of SPEC §1–2 on one backend. Every function validates its inputs and
 * returns `Left(RlhfError)` on bad input; nothing throws. Outputs follow the dtype of the float inputs.
 */
export interface Kernels {
  readonly name: BackendName;
  readonly logprobs: Op<LogprobsParams, LogprobsInputs, LogprobsOutputs, LogprobsOut>;
  readonly logprobsBackward: Op<LogprobsBackwardParams, LogprobsBackwardInputs, GradLogitsOutputs, GradLogitsOut>;
  readonly logsoftmax: Op<TemperatureParams, LogsoftmaxInputs, LogsoftmaxOutputs, LogsoftmaxOut>;
  readonly logsoftmaxBackward: Op<TemperatureParams, LogsoftmaxBackwardInputs, GradLogitsOutputs, GradLogitsOut>;
  readonly klFull: Op<KlFullParams, KlFullInputs, KlFullOutputs, KlFullOut>;
  readonly pairwise: Op<PairwiseParams, PairwiseInputs, PairwiseOutputs, PairwiseOut>;
  readonly ranking: Op<void, RankingInputs, RankingOutputs, RankingOut>;
  readonly dpo: Op<DpoParams, DpoInputs, DpoOutputs, DpoOut>;
  /** The row kernels off the event loop (a worker thread on native backends; the same code on `js`). */
  readonly async: {
    readonly logprobs: AsyncOp<LogprobsParams, LogprobsInputs, LogprobsOutputs, LogprobsOut>;
    readonly logprobsBackward: AsyncOp<LogprobsBackwardParams, LogprobsBackwardInputs, GradLogitsOutputs, GradLogitsOut>;
    readonly logsoftmax: AsyncOp<TemperatureParams, LogsoftmaxInputs, LogsoftmaxOutputs, LogsoftmaxOut>;
    readonly logsoftmaxBackward: AsyncOp<TemperatureParams, LogsoftmaxBackwardInputs, GradLogitsOutputs, GradLogitsOut>;
    readonly klFull: AsyncOp<KlFullParams, KlFullInputs, KlFullOutputs, KlFullOut>;
  };
}
