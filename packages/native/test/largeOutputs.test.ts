import { describe, expect, it } from 'vitest';
import { expectSameBits, onEveryIsa, requireNative } from './helpers.js';

const raw = requireNative();

// Outputs of 16 MiB and more are written with non-temporal stores after a scalar head up to the first
// aligned address (an odd V makes every row start at another alignment). The same rows computed a few
// at a time (small outputs: ordinary stores) must give the same bits.
describe('large [N, V] outputs (non-temporal stores) equal the same rows computed in small calls', () => {
  const V = 50257, N = 84; // 4.2M floats > 16 MiB
  const x = Float32Array.from({ length: N * V }, (_, i) => 3 * Math.sin(i * 0.7) + (i % 97 === 0 ? -Infinity : 0));
  const q = Float32Array.from({ length: N * V }, (_, i) => 3 * Math.cos(i * 0.3));
  const g = Float32Array.from({ length: N * V }, (_, i) => Math.sin(i * 1.3));
  const y = Int32Array.from({ length: N }, (_, n) => (n % 5 === 4 ? -100 : (n * 7919) % V));
  const rowsG = Float32Array.from({ length: N }, (_, n) => 0.5 + 0.01 * n);
  const whole = new Float32Array(N * V), pieces = new Float32Array(N * V);
  const STEP = 4; // 4 rows: 0.8 MB per call

  const compare = (label: string, big: (out: Float32Array) => void, small: (n0: number, n1: number, out: Float32Array) => void) => {
    big(whole);
    for (let n0 = 0; n0 < N; n0 += STEP) small(n0, Math.min(N, n0 + STEP), pieces.subarray(n0 * V, Math.min(N, n0 + STEP) * V));
    expectSameBits(whole, pieces, label);
  };

  it('logprobs.backward, logsoftmax, logsoftmax.backward and kl.full on every ISA', () => {
    onEveryIsa((isa) => {
      compare(
        `${isa} logprobs.backward`,
        (out) => raw.logprobsBackward({ logits: x, labels: y, gradLogprobs: rowsG, gradEntropy: rowsG, N, V, temperature: 1.1, ignoreIndex: -100, gradLogits: out }),
        (n0, n1, out) =>
          raw.logprobsBackward({
            logits: x.subarray(n0 * V, n1 * V), labels: y.subarray(n0, n1), gradLogprobs: rowsG.subarray(n0, n1),
            gradEntropy: rowsG.subarray(n0, n1), N: n1 - n0, V, temperature: 1.1, ignoreIndex: -100, gradLogits: out,
          }),
      );
      compare(
        `${isa} logsoftmax`,
        (out) => raw.logsoftmax({ logits: x, N, V, temperature: 1, logsoftmax: out }),
        (n0, n1, out) => raw.logsoftmax({ logits: x.subarray(n0 * V, n1 * V), N: n1 - n0, V, temperature: 1, logsoftmax: out }),
      );
      compare(
        `${isa} logsoftmax.backward`,
        (out) => raw.logsoftmaxBackward({ logits: x, gradOutput: g, N, V, temperature: 0.9, gradLogits: out }),
        (n0, n1, out) =>
          raw.logsoftmaxBackward({ logits: x.subarray(n0 * V, n1 * V), gradOutput: g.subarray(n0 * V, n1 * V), N: n1 - n0, V, temperature: 0.9, gradLogits: out }),
      );
      const kl = new Float32Array(N);
      compare(
        `${isa} kl.full`,
        (out) => raw.klFull({ logitsP: x, logitsQ: q, gradKl: rowsG, N, V, temperature: 1, kl, gradLogitsP: out }),
        (n0, n1, out) =>
          raw.klFull({
            logitsP: x.subarray(n0 * V, n1 * V), logitsQ: q.subarray(n0 * V, n1 * V), gradKl: rowsG.subarray(n0, n1), N: n1 - n0, V,
            temperature: 1, kl: kl.subarray(n0, n1), gradLogitsP: out,
          }),
      );
      expect(Number.isFinite(whole[1])).toBe(true);
    });
  });
});
