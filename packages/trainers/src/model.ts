import * as E from 'fp-ts/lib/Either.js';
import {
  expectInt32,
  expectMask,
  expectRank,
  expectShape,
  indexError,
  shapeError,
  type FloatTensor,
  type IntTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import { pipe } from 'fp-ts/lib/function.js';

/** A trainable array: its values and the gradient accumulated into it by `backward`. */
export interface Parameter {
  readonly name: string;
  readonly shape: readonly number[];
  readonly value: Float64Array;
  readonly grad: Float64Array;
}

/** Anything with parameters an optimiser can update. */
export interface Trainable {
  readonly parameters: readonly Parameter[];
}

/**
 * The result of a forward pass and the way back through it: `backward(grad)` takes the gradient
 * of the loss with respect to `output` and adds the parameter gradients into each `Parameter.grad`.
 */
export interface Forward<Output> {
  readonly output: Output;
  readonly backward: (grad: FloatTensor) => Result<void>;
}

/**
 * A policy: anything that gives next-token logits for token sequences and accepts a gradient with
 * respect to those logits. For `tokens [B, L]` the logits are `[B·L, V]`, row `b·L + t` scoring the
 * token at position t given `tokens[b, <t]` (so the labels of row b·L + t are `tokens[b, t]`).
 */
export interface Policy extends Trainable {
  readonly vocabSize: number;
  readonly logits: (tokens: IntTensor) => Result<Forward<FloatTensor>>;
}

/** A value model: `values [B, L]`, entry (b, t) estimating the return from the state `tokens[b, <t]`. */
export interface ValueModel extends Trainable {
  readonly vocabSize: number;
  readonly values: (tokens: IntTensor) => Result<Forward<FloatTensor>>;
}

/** A reward model: one scalar score per sequence for the response positions marked in `mask` ([B]). */
export interface RewardModel extends Trainable {
  readonly vocabSize: number;
  readonly scores: (tokens: IntTensor, mask: MaskTensor) => Result<Forward<FloatTensor>>;
}

export const zeroGrad = (m: Trainable): void => {
  for (const p of m.parameters) p.grad.fill(0);
};

export const parameterCount = (m: Trainable): number => m.parameters.reduce((n, p) => n + p.value.length, 0);

/** Copies the parameter values of `from` into `to` (same architecture), e.g. to freeze a reference policy. */
export const copyParameters = (from: Trainable, to: Trainable): Result<void> => {
  if (from.parameters.length !== to.parameters.length)
    return E.left(shapeError(`copyParameters: ${from.parameters.length} parameters into ${to.parameters.length}`));
  for (let i = 0; i < from.parameters.length; i++) {
    const a = from.parameters[i]!;
    const b = to.parameters[i]!;
    if (a.name !== b.name || a.value.length !== b.value.length)
      return E.left(shapeError(`copyParameters: parameter ${a.name} [${a.value.length}] does not match ${b.name} [${b.value.length}]`));
  }
  from.parameters.forEach((p, i) => to.parameters[i]!.value.set(p.value));
  return E.right(undefined);
};

/** `tokens` is an int32 [B, L] batch with every id in [0, vocabSize). */
export const checkTokens = (name: string, tokens: unknown, vocabSize: number): Result<IntTensor> =>
  pipe(
    expectInt32(name, tokens),
    E.chain((t) => expectRank(2)(name, t)),
    E.chain((t) => {
      for (let i = 0; i < t.data.length; i++) {
        const id = t.data[i]!;
        if (id < 0 || id >= vocabSize)
          return E.left(indexError(`${name}: token ${id} at flat index ${i} is outside the vocabulary [0, ${vocabSize})`));
      }
      return E.right(t);
    }),
  );

/** `mask` is a 0/1 mask of the same [B, L] shape as `tokens`. */
export const checkMaskFor = (name: string, mask: unknown, tokens: IntTensor): Result<MaskTensor> =>
  pipe(
    expectMask(name, mask),
    E.chain((m) => expectShape(tokens.shape)(name, m)),
  ) as Result<MaskTensor>;
