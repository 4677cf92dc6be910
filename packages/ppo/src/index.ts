export {
  aggregationParam,
  aggregationWeights,
  AGGREGATIONS,
  type Aggregation,
  weightedLoss,
  type AggregationWeights,
  type TokenTerm,
} from './aggregation.js';
export {
  policyLoss,
  type PolicyLossParams,
  type PolicyLossInputs,
  type PolicyLossOutputs,
  type PolicyLossOut,
} from './policyLoss.js';
export {
  valueLoss,
  type ValueLossParams,
  type ValueLossInputs,
  type ValueLossOutputs,
  type ValueLossOut,
} from './valueLoss.js';
export { ppoLoss, type PpoLossParams, type PpoLossInputs, type PpoLossOutputs, type PpoLossOut } from './ppoLoss.js';
