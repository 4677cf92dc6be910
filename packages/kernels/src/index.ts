export * from './types.js';
export type * from './raw.js';
export { DPO_LOSS_TYPES } from './raw.js';
export { checkHasPair, checkRanks, labelSmoothingParam, temperatureParam } from './validate.js';
export { makeKernels } from './facade.js';
export * from './registry.js';
export { js, jsRaw } from './js/index.js';
export { onBackend, type BackendOption } from './withBackend.js';
