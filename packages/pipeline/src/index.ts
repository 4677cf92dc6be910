export { stage, asyncStage, start, inStage, type Stage, type NeedsOf, type AddsOf } from './stage.js';
