export * from './error.js';
export * from './tensor.js';
export * from './checks.js';
export * from './reduce.js';
export * from './gradcheck.js';
