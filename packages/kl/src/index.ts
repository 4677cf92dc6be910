export {
  klEstimate,
  pointwiseKl,
  KL_ESTIMATORS,
  type KlEstimator,
  type KlEstimateParams,
  type KlEstimateInputs,
  type KlEstimateOutputs,
  type KlEstimateOut,
  type PointwiseKl,
} from './estimators.js';
export {
  shapeRewards,
  type ShapeRewardsParams,
  type ShapeRewardsInputs,
  type ShapeRewardsOutputs,
  type ShapeRewardsOut,
} from './shaping.js';
export {
  adaptiveKl,
  adaptiveKlController,
  fixedKlController,
  type KlController,
  type AdaptiveKlParams,
  type AdaptiveKlInputs,
  type AdaptiveKlOutputs,
  type AdaptiveKlOut,
} from './controllers.js';
export { klFull } from './full.js';
export type { BackendOption, KlFullParams, KlFullInputs, KlFullOutputs, KlFullOut } from '@rlhf/kernels';
