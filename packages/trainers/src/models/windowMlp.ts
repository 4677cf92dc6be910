import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  floatShaped,
  paramError,
  unsafeTensor,
  type FloatTensor,
  type IntTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import {
  checkMaskFor,
  checkTokens,
  type Forward,
  type Parameter,
  type Policy,
  type RewardModel,
  type Trainable,
  type ValueModel,
} from '../model.js';
import type { Rng } from '../rng.js';

export interface WindowMlpConfig {
  /** Token ids are in [0, vocabSize); one extra embedding row stands for "before the start". */
  readonly vocabSize: number;
  /** How many tokens each position sees. */
  readonly window: number;
  readonly embedDim: number;
  readonly hidden: number;
}

/**
 * A fixed-window neural language model (Bengio et al. 2003): the embeddings of the `window` tokens
 * around a position, concatenated, go through one tanh hidden layer to `outDim` outputs per position.
 * With `includeCurrent` false a position sees only the tokens before it (a causal next-token model);
 * with it true the window ends at the position itself (a per-token feature for reward models).
 * Written from scratch over Float64Array; `backward` is the exact gradient (checked by finite differences).
 */
interface WindowMlp extends Trainable {
  readonly config: WindowMlpConfig;
  /** Outputs [B·L, outDim] and the way back to the parameters. */
  readonly forward: (tokens: IntTensor) => Result<{ out: Float64Array; backward: (gradOut: Float64Array) => void }>;
}

const param = (name: string, shape: number[], init: (i: number) => number): Parameter => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, value: Float64Array.from({ length: n }, (_, i) => init(i)), grad: new Float64Array(n) };
};

const checkConfig = (c: WindowMlpConfig): Result<WindowMlpConfig> => {
  for (const key of ['vocabSize', 'window', 'embedDim', 'hidden'] as const)
    if (!Number.isSafeInteger(c[key]) || c[key] < 1) return E.left(paramError(`${key} must be an integer ≥ 1, got ${c[key]}`));
  return E.right(c);
};

const windowMlp = (c: WindowMlpConfig, outDim: number, includeCurrent: boolean, rng: Rng, prefix: string): WindowMlp => {
  const { vocabSize: V, window: C, embedDim: D, hidden: H } = c;
  const bos = V;
  const inDim = C * D;
  // Small random weights (scaled by fan-in) so tanh starts in its linear range; the output layer starts at 0.
  const embed = param(`${prefix}.embed`, [V + 1, D], () => rng.normal() * 0.5);
  const w1 = param(`${prefix}.w1`, [inDim, H], () => rng.normal() / Math.sqrt(inDim));
  const b1 = param(`${prefix}.b1`, [H], () => 0);
  const w2 = param(`${prefix}.w2`, [H, outDim], () => rng.normal() * 0.1 / Math.sqrt(H));
  const b2 = param(`${prefix}.b2`, [outDim], () => 0);

  const forward = (tokens: IntTensor) =>
    pipe(
      checkTokens('tokens', tokens, V),
      E.map((t) => {
        const [B, L] = t.shape as [number, number];
        const N = B * L;
        // The first layer is linear in the embeddings, so slot k of the window contributes
        // table[k][v] = embed[v] · w1[k·D:(k+1)·D, :] for token v: one table per call replaces
        // C·D·H multiply-adds per position by C·H additions.
        const table = new Float64Array(C * (V + 1) * H);
        for (let k = 0; k < C; k++)
          for (let v = 0; v <= V; v++) {
            const row = (k * (V + 1) + v) * H;
            for (let d = 0; d < D; d++) {
              const x = embed.value[v * D + d]!;
              const w = (k * D + d) * H;
              for (let j = 0; j < H; j++) table[row + j]! += x * w1.value[w + j]!;
            }
          }
        const ctx = new Int32Array(N * C);
        const h = new Float64Array(N * H);
        const out = new Float64Array(N * outDim);
        for (let b = 0; b < B; b++)
          for (let pos = 0; pos < L; pos++) {
            const n = b * L + pos;
            const first = includeCurrent ? pos - C + 1 : pos - C;
            const hn = n * H;
            for (let j = 0; j < H; j++) h[hn + j] = b1.value[j]!;
            for (let k = 0; k < C; k++) {
              const src = first + k;
              const v = src < 0 ? bos : t.data[b * L + src]!;
              ctx[n * C + k] = v;
              const row = (k * (V + 1) + v) * H;
              for (let j = 0; j < H; j++) h[hn + j]! += table[row + j]!;
            }
            for (let j = 0; j < H; j++) h[hn + j] = Math.tanh(h[hn + j]!);
            const on = n * outDim;
            for (let o = 0; o < outDim; o++) out[on + o] = b2.value[o]!;
            for (let j = 0; j < H; j++) {
              const x = h[hn + j]!;
              const w = j * outDim;
              for (let o = 0; o < outDim; o++) out[on + o]! += x * w2.value[w + o]!;
            }
          }
        const backward = (g: Float64Array): void => {
          const gTable = new Float64Array(C * (V + 1) * H);
          const gPre = new Float64Array(H);
          for (let n = 0; n < N; n++) {
            const hn = n * H;
            const on = n * outDim;
            for (let o = 0; o < outDim; o++) b2.grad[o]! += g[on + o]!;
            for (let j = 0; j < H; j++) {
              const x = h[hn + j]!;
              const w = j * outDim;
              let s = 0;
              for (let o = 0; o < outDim; o++) {
                const go = g[on + o]!;
                w2.grad[w + o]! += x * go;
                s += go * w2.value[w + o]!;
              }
              gPre[j] = s * (1 - x * x);
              b1.grad[j]! += gPre[j]!;
            }
            for (let k = 0; k < C; k++) {
              const row = (k * (V + 1) + ctx[n * C + k]!) * H;
              for (let j = 0; j < H; j++) gTable[row + j]! += gPre[j]!;
            }
          }
          // Back through the table: d table[k][v][j] / d embed[v][d] = w1[k·D+d][j], and / d w1[k·D+d][j] = embed[v][d].
          for (let k = 0; k < C; k++)
            for (let v = 0; v <= V; v++) {
              const row = (k * (V + 1) + v) * H;
              for (let d = 0; d < D; d++) {
                const x = embed.value[v * D + d]!;
                const w = (k * D + d) * H;
                let ge = 0;
                for (let j = 0; j < H; j++) {
                  const gt = gTable[row + j]!;
                  w1.grad[w + j]! += x * gt;
                  ge += gt * w1.value[w + j]!;
                }
                embed.grad[v * D + d]! += ge;
              }
            }
        };
        return { out, backward };
      }),
    );
  return { config: c, parameters: [embed, w1, b1, w2, b2], forward };
};

/** The gradient handed to `backward` must be a float tensor of the output's shape. */
const expectGrad = (shape: readonly number[], grad: unknown): Result<FloatTensor> => floatShaped(shape)('grad', grad);

const toF64 = (g: FloatTensor): Float64Array => (g.data instanceof Float64Array ? g.data : Float64Array.from(g.data));

/** The network's output as a float64 tensor of `shape`, whose backward checks and forwards its gradient. */
const forwardOf =
  (shape: readonly number[]) =>
  ({ out, backward }: { out: Float64Array; backward: (gradOut: Float64Array) => void }): Forward<FloatTensor> => ({
    output: unsafeTensor('float64', shape, out),
    backward: (grad: FloatTensor) => pipe(expectGrad(shape, grad), E.map((g) => backward(toF64(g)))),
  });

/** A causal next-token policy over a fixed window of previous tokens. */
export const windowMlpPolicy = (config: WindowMlpConfig, rng: Rng): Result<Policy> =>
  pipe(
    checkConfig(config),
    E.map((c) => {
      const net = windowMlp(c, c.vocabSize, false, rng, 'policy');
      const logits = (tokens: IntTensor): Result<Forward<FloatTensor>> =>
        pipe(net.forward(tokens), E.map(forwardOf([tokens.shape[0]! * tokens.shape[1]!, c.vocabSize])));
      return { vocabSize: c.vocabSize, parameters: net.parameters, logits };
    }),
  );

/** A value head on the same architecture: values [B, L] from the tokens before each position. */
export const windowMlpValue = (config: WindowMlpConfig, rng: Rng): Result<ValueModel> =>
  pipe(
    checkConfig(config),
    E.map((c) => {
      const net = windowMlp(c, 1, false, rng, 'value');
      const values = (tokens: IntTensor): Result<Forward<FloatTensor>> =>
        pipe(net.forward(tokens), E.map(forwardOf(tokens.shape)));
      return { vocabSize: c.vocabSize, parameters: net.parameters, values };
    }),
  );

/**
 * A reward model: a per-token score from the window ending at each token, summed over the
 * response positions of `mask`. A sum of local features can express any utility that counts
 * local patterns.
 */
export const windowMlpReward = (config: WindowMlpConfig, rng: Rng): Result<RewardModel> =>
  pipe(
    checkConfig(config),
    E.map((c) => {
      const net = windowMlp(c, 1, true, rng, 'reward');
      const scores = (tokens: IntTensor, mask: MaskTensor): Result<Forward<FloatTensor>> =>
        pipe(
          checkMaskFor('mask', mask, tokens),
          E.chain((m) => pipe(net.forward(tokens), E.map((f) => ({ m, ...f })))),
          E.map(({ m, out, backward }) => {
            const [B, L] = tokens.shape as [number, number];
            const s = new Float64Array(B);
            for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) if (m.data[b * L + t] !== 0) s[b]! += out[b * L + t]!;
            return {
              output: unsafeTensor('float64', [B], s),
              backward: (grad: FloatTensor) =>
                pipe(
                  expectGrad([B], grad),
                  E.map((g) => {
                    const gOut = new Float64Array(B * L);
                    for (let b = 0; b < B; b++)
                      for (let t = 0; t < L; t++) if (m.data[b * L + t] !== 0) gOut[b * L + t] = g.data[b]!;
                    backward(gOut);
                  }),
                ),
            };
          }),
        );
      return { vocabSize: c.vocabSize, parameters: net.parameters, scores };
    }),
  );
