import type { FloatArray, FloatDType } from '@rlhf/tensor';

/**
 * What a backend implements: one function per heavy operation, on flat row-major arrays whose
 * shapes, dtypes, indices and parameters were already validated by the `Kernels` facade, writing
 * into output arrays the facade allocated (or the caller passed). A backend may still throw an
 * RlhfError (native code re-checks every index); the facade turns it into a `Left`.
 *
 * Float arrays are all float32 or all float64 within one call. Scalars (loss, accuracy) are returned.
 */
export interface RawKernels {
  readonly logprobs: (a: RawLogprobs) => void;
  readonly logprobsBackward: (a: RawLogprobsBackward) => void;
  readonly logsoftmax: (a: RawLogsoftmax) => void;
  readonly logsoftmaxBackward: (a: RawLogsoftmaxBackward) => void;
  readonly klFull: (a: RawKlFull) => void;
  readonly pairwise: (a: RawPairwise) => LossStats;
  readonly ranking: (a: RawRanking) => RankingStats;
  readonly dpo: (a: RawDpo) => LossStats;
  /** Optional off-event-loop versions of the row kernels (native backends run them on a worker thread). */
  readonly async?: Partial<AsyncRawKernels>;
  /**
   * True for the float dtypes whose kernels re-check every label and rank themselves and throw an
   * `index` RlhfError: the facade then skips its own O(N) scan (a ranking batch of 800 000 ranks
   * costs ~1 ms of JavaScript, a third of the native kernel). Absent: the facade checks everything.
   */
  readonly checksIndices?: (dtype: FloatDType) => boolean;
}

export interface AsyncRawKernels {
  readonly logprobs: (a: RawLogprobs) => Promise<void>;
  readonly logprobsBackward: (a: RawLogprobsBackward) => Promise<void>;
  readonly logsoftmax: (a: RawLogsoftmax) => Promise<void>;
  readonly logsoftmaxBackward: (a: RawLogsoftmaxBackward) => Promise<void>;
  readonly klFull: (a: RawKlFull) => Promise<void>;
}

export interface RowsArgs {
  readonly N: number;
  readonly V: number;
  readonly temperature: number;
}

export interface RawLogprobs extends RowsArgs {
  readonly logits: FloatArray;
  readonly labels: Int32Array;
  readonly ignoreIndex: number;
  readonly logprobs: FloatArray;
  readonly entropy: FloatArray;
  /** [N, 3]: (m, s, H) per row, lse = m/T + s (see LogprobsOutputs); null: not saved. */
  readonly rowStats: FloatArray | null;
}

export interface RawLogprobsBackward extends RowsArgs {
  readonly logits: FloatArray;
  readonly labels: Int32Array;
  readonly ignoreIndex: number;
  readonly gradLogprobs: FloatArray;
  readonly gradEntropy: FloatArray | null;
  /** The forward's [N, 3] row statistics, or null: recomputed. */
  readonly rowStats: FloatArray | null;
  /** May be the very array `logits` (in-place backward, opt-in): each element is read before it is written. */
  readonly gradLogits: FloatArray;
}

export interface RawLogsoftmax extends RowsArgs {
  readonly logits: FloatArray;
  readonly logsoftmax: FloatArray;
}

export interface RawLogsoftmaxBackward extends RowsArgs {
  readonly logits: FloatArray;
  readonly gradOutput: FloatArray;
  readonly gradLogits: FloatArray;
}

export interface RawKlFull extends RowsArgs {
  readonly logitsP: FloatArray;
  readonly logitsQ: FloatArray;
  readonly gradKl: FloatArray | null;
  /** A forward's [N, 5] row statistics (see KlFullOutputs), or null: computed here. */
  readonly savedStats: FloatArray | null;
  readonly kl: FloatArray;
  /** null: forward only. */
  readonly gradLogitsP: FloatArray | null;
  /** [N, 5]: the row statistics are saved here (null: not saved). */
  readonly rowStats: FloatArray | null;
}

export interface RawPairwise {
  readonly B: number;
  readonly chosen: FloatArray;
  readonly rejected: FloatArray;
  readonly margin: FloatArray | null;
  readonly labelSmoothing: number;
  readonly centerCoef: number;
  readonly gradChosen: FloatArray;
  readonly gradRejected: FloatArray;
}

export interface RawRanking {
  readonly B: number;
  readonly K: number;
  readonly rewards: FloatArray;
  /** Validated: every rank is −1 or in [0, K). */
  readonly ranks: Int32Array;
  readonly grad: FloatArray;
}

export type DpoLossType = 'sigmoid' | 'hinge' | 'ipo';
export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'hinge', 'ipo'];

export interface RawDpo {
  readonly B: number;
  readonly policyChosen: FloatArray;
  readonly policyRejected: FloatArray;
  readonly refChosen: FloatArray;
  readonly refRejected: FloatArray;
  readonly beta: number;
  readonly lossType: DpoLossType;
  readonly labelSmoothing: number;
  readonly gradPolicyChosen: FloatArray;
  readonly gradPolicyRejected: FloatArray;
  readonly rewardsChosen: FloatArray;
  readonly rewardsRejected: FloatArray;
}

export interface LossStats {
  readonly loss: number;
  readonly accuracy: number;
}

export interface RankingStats extends LossStats {
  /** Number of ordered pairs over the batch; 0 makes the facade return an `empty` error. */
  readonly pairs: number;
}
