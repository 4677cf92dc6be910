export * from './caseFile.js';
export * from './compare.js';
export * from './runner.js';
export { OPS, type OpRunner } from './ops.js';
export { loadNativeBackends } from './loadNative.js';
