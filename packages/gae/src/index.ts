export { gae, type GaeParams, type GaeInputs, type GaeOutputs, type GaeOut } from './gae.js';
export { whiten, type WhitenParams, type WhitenInputs, type WhitenOutputs, type WhitenOut } from './whiten.js';
