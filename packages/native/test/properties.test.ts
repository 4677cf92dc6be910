import { describe, it } from 'vitest';
import fc from 'fast-check';
import { expectClose, onEveryIsa, reference, requireNative } from './helpers.js';

const raw = requireNative();

// Random shapes, temperatures and logits (some −∞): every row kernel of cpu agrees with js.
const rowsCase = (maxN: number, minV: number, maxV: number) =>
  fc
  .record({ N: fc.integer({ min: 1, max: maxN }), V: fc.integer({ min: minV, max: maxV }), temperature: fc.double({ min: 0.05, max: 20, noNaN: true }) })
  .chain(({ N, V, temperature }) =>
    fc.record({
      N: fc.constant(N),
      V: fc.constant(V),
      temperature: fc.constant(temperature),
      x: fc.array(fc.oneof({ weight: 12, arbitrary: fc.float({ min: -60, max: 60, noNaN: true }) }, { weight: 1, arbitrary: fc.constant(-Infinity) }), { minLength: N * V, maxLength: N * V }),
      q: fc.array(fc.float({ min: -60, max: 60, noNaN: true }), { minLength: N * V, maxLength: N * V }),
      labels: fc.array(fc.integer({ min: -1, max: V - 1 }), { minLength: N, maxLength: N }),
      g: fc.array(fc.float({ min: -3, max: 3, noNaN: true }), { minLength: N, maxLength: N }),
    }),
  );

// kl.full's gradient (g/T)·p·(log p − log q − kl) is formed in float32 from terms of the size of
// log p, log q and kl: at a sharp temperature with q peaked away from p these are ~1e3 and cancel to
// ~1, so float32 itself leaves ~1e-4 of relative error there, whatever the summation order (each ISA
// path sums in its own). The slack is that rounding: (|g|/T)·p·(|log p| + |log q| + |kl|)·2^-22 (four roundings of terms of that size).
const klGradSlack = (logP: Float32Array, q: Float32Array, kl: Float32Array, g: Float32Array, N: number, V: number, temperature: number): Float64Array => {
  const logQ = new Float32Array(N * V);
  reference.logsoftmax({ logits: q, N, V, temperature, logsoftmax: logQ });
  return Float64Array.from(logP, (lp, i) => {
    const n = Math.floor(i / V);
    return lp === -Infinity ? 0 : (Math.abs(g[n]!) / temperature) * Math.exp(lp) * (Math.abs(lp) + Math.abs(logQ[i]!) + Math.abs(kl[n]!)) * 2 ** -22;
  });
};

describe('properties: cpu = js on random shapes', () => {
  it.each([
    // short rows (tails shorter than a vector), and rows of several online blocks (2048 entries each)
    // where the running maxima of p and q, and q at p's peak, move from block to block
    [6, 1, 300, 60],
    [2, 2000, 7000, 12],
  ])('logprobs (forward and backward), logsoftmax and kl.full: N <= %i, V in [%i, %i]', (maxN, minV, maxV, numRuns) => {
    onEveryIsa((isa) => {
      fc.assert(
        fc.property(rowsCase(maxN, minV, maxV), ({ N, V, temperature, x, q, labels, g }) => {
          const logits = Float32Array.from(x);
          for (let n = 0; n < N; n++) if (logits.subarray(n * V, (n + 1) * V).every((v) => v === -Infinity)) logits[n * V] = 0;
          const y = Int32Array.from(labels, (l, n) => (l >= 0 && logits[n * V + l] === -Infinity ? -1 : l));
          const gl = Float32Array.from(g);
          const run = (k: typeof raw) => {
            const o = { logprobs: new Float32Array(N), entropy: new Float32Array(N), grad: new Float32Array(N * V), ls: new Float32Array(N * V), kl: new Float32Array(N), klGrad: new Float32Array(N * V) };
            k.logprobs({ logits, labels: y, N, V, temperature, ignoreIndex: -1, logprobs: o.logprobs, entropy: o.entropy });
            k.logprobsBackward({ logits, labels: y, gradLogprobs: gl, gradEntropy: gl, N, V, temperature, ignoreIndex: -1, gradLogits: o.grad });
            k.logsoftmax({ logits, N, V, temperature, logsoftmax: o.ls });
            k.klFull({ logitsP: logits, logitsQ: Float32Array.from(q), gradKl: gl, N, V, temperature, kl: o.kl, gradLogitsP: o.klGrad });
            return o;
          };
          const got = run(raw), want = run(reference);
          for (const name of ['logprobs', 'entropy', 'grad', 'ls', 'kl'] as const)
            expectClose(got[name], want[name], { label: `${isa} ${name} N=${N} V=${V} T=${temperature}` });
          expectClose(got.klGrad, want.klGrad, { label: `${isa} klGrad N=${N} V=${V} T=${temperature}`, slack: klGradSlack(want.ls, Float32Array.from(q), want.kl, gl, N, V, temperature) });
        }),
        { numRuns, seed: 20261127 + maxV },
      );
    });
  });
});
