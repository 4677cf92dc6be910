import { makeKernels } from '../facade.js';
import type { RawKernels } from '../raw.js';
import { logprobs } from './logprobs.js';
import { logprobsBackward } from './logprobsBackward.js';
import { logsoftmax } from './logsoftmax.js';
import { logsoftmaxBackward } from './logsoftmaxBackward.js';
import { klFull } from './klFull.js';
import { pairwise } from './pairwise.js';
import { ranking } from './ranking.js';
import { dpo } from './dpo.js';

/** The pure TypeScript kernels: the readable reference and the fallback of every native backend. */
export const jsRaw: RawKernels = {
  logprobs,
  logprobsBackward,
  logsoftmax,
  logsoftmaxBackward,
  klFull,
  pairwise,
  ranking,
  dpo,
};

export const js = makeKernels('js', jsRaw);
