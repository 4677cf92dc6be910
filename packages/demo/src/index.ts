export { resumeOptions, runJob, SIZES, type JobOptions, type JobSize, type Report, type RunReport } from './job.js';
export { readRun, PPO_RUNS, type PpoRunName, type ResumedRun, type RunFile } from './resume.js';
export { annotate, corpus, hiddenUtility, makeWorld, samplePrompts, GOOD_TOKENS, VOCAB, type World } from './world.js';
export { lineChartSvg, type Panel, type Series } from './plot.js';
