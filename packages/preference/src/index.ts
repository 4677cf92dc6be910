export { pairwise } from './pairwise.js';
export { ranking } from './ranking.js';
export { dpo } from './dpo.js';
export type {
  BackendOption,
  PairwiseParams,
  PairwiseInputs,
  PairwiseOutputs,
  RankingInputs,
  RankingOutputs,
  DpoParams,
  DpoInputs,
  DpoOutputs,
} from '@rlhf/kernels';
