import type { Kernels } from '@rlhf/kernels';
import { call, F32, must, shaped, uniform } from './data.js';
import { kernelRunners, rowShapes } from './runners.js';
import type { Bench, Shape } from './types.js';

const klShapes = (quick: boolean): readonly Shape[] => (quick ? rowShapes(true).slice(0, 1) : [[2048, 32000]]);

const klInputs = (N: number, V: number) => {
  const p = uniform(N * V, -8, 8, 10);
  // The reference policy: the policy's logits moved by a little noise, as after a few updates.
  const q = uniform(N * V, -0.25, 0.25, 11);
  for (let i = 0; i < q.length; i++) q[i]! += p[i]!;
  return { logitsP: shaped(p, [N, V]), logitsQ: shaped(q, [N, V]), gradKl: shaped(uniform(N, 0, 0.1, 12), [N]) };
};

/**
 * Exact KL with its gradient: reads both logits, writes the gradient over the policy's.
 * `fromRowStats`: the gradient alone, from a forward's saved row statistics (computed once per backend
 * in setup, outside the timing): one pass over both rows, no statistics pass.
 */
const gradientBench = (fromRowStats: boolean): Bench => ({
  op: fromRowStats ? 'klFull.rowStats' : 'klFull',
  bytesCounted: `2·N·V·4 read (logitsP, logitsQ) + N·V·4 written (gradLogitsP) + ${fromRowStats ? '12·N·4 (gradKl, rowStats in and out, kl)' : '7·N·4 (gradKl, kl, rowStats)'}`,
  shapes: klShapes,
  setup: ([N, V], env) => {
    const inputs = klInputs(N!, V!);
    const out = { kl: new Float32Array(N!), gradLogitsP: new Float32Array(N! * V!), rowStats: new Float32Array(5 * N!) };
    const withStats = (k: Kernels) =>
      fromRowStats ? { ...inputs, rowStats: must(k.klFull({ withGrad: false })(inputs)).rowStats } : inputs;
    return {
      bytes: 3 * N! * V! * F32 + (fromRowStats ? 12 : 7) * N! * F32,
      reference: 'copy',
      runners: kernelRunners(env, (k) => {
        const given = withStats(k);
        return () => call(k.klFull({ withGrad: true }, out)(given));
      }),
    };
  },
});

export const klFullBench = gradientBench(false);
export const klFullSavedBench = gradientBench(true);

/** Exact KL alone (the penalty without its gradient): reads both logits. */
export const klFullForwardBench: Bench = {
  op: 'klFull.forward',
  bytesCounted: '2·N·V·4 read (logitsP, logitsQ) + 6·N·4 written (kl, rowStats)',
  shapes: klShapes,
  setup: ([N, V], env) => {
    const { logitsP, logitsQ } = klInputs(N!, V!);
    const inputs = { logitsP, logitsQ };
    const out = { kl: new Float32Array(N!), rowStats: new Float32Array(5 * N!) };
    return {
      bytes: 2 * N! * V! * F32 + 6 * N! * F32,
      reference: 'read',
      runners: kernelRunners(env, (k) => () => call(k.klFull({ withGrad: false }, out)(inputs))),
    };
  },
};
