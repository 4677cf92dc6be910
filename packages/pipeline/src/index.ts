export { stage, asyncStage, start, inStage, type Stage, type NeedsOf, type AddsOf, type Merge } from './stage.js';
