import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  emptyError,
  expectFloat,
  isOn,
  maskCount,
  maskedSum,
  optional,
  outputBuffer,
  separateOutputs,
  total,
  booleanParam,
  maskShaped,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';

export interface WhitenParams {
  /** Default true; false adds the mean back (whitening the scale only). */
  readonly shiftMean?: boolean | null;
}
export interface WhitenInputs {
  /** Any shape. */
  readonly x: FloatTensor;
  /** Same shape as x, 0/1 (default all ones). */
  readonly mask?: MaskTensor | null;
}
export interface WhitenOutputs {
  /** Same shape as x, 0 at masked positions. */
  readonly y: FloatTensor;
}
export interface WhitenOut {
  readonly y?: FloatArray;
}

/** Keeps a variance of exactly 0 (one entry, or all equal) finite. */
const VARIANCE_EPSILON = 1e-8;

/**
 * SPEC §4 whiten: `(x − μ)/sqrt(s² + 1e−8)` with the mean μ and the unbiased variance s² over the
 * masked entries (`s² = 0` for a single entry); μ is added back when `shiftMean` is false.
 *
 * @example pipe({ x: advantages, mask }, whiten())
 */
export const whiten = total(
  (params?: WhitenParams, out?: WhitenOut) =>
  (inputs: WhitenInputs): Result<WhitenOutputs> =>
    pipe(
      E.Do,
      E.bind('x', () => expectFloat('x', inputs?.x)),
      E.bind('mask', ({ x }) => optional(maskShaped(x.shape))('mask', inputs.mask)),
      E.bind('shiftMean', () => booleanParam('shiftMean', params?.shiftMean, true)),
      E.bind('n', ({ x, mask }) => {
        const n = maskCount(mask, x.data.length);
        return n > 0 ? E.right(n) : E.left(emptyError('whiten: no entry is selected by the mask, so there is no mean'));
      }),
      E.bind('y', ({ x }) => outputBuffer('y', x.dtype, x.data.length, out?.y)),
      // y may be x itself: the statistics are taken before y is written, and each entry is read first.
      E.chainFirst(({ x, mask, y }) => separateOutputs({ y }, { x: x.data, mask: mask?.data }, [['y', 'x']])),
      E.map(({ x, mask, shiftMean, n, y }) => {
        const mean = maskedSum(x, mask) / n;
        let squares = 0;
        for (let i = 0; i < x.data.length; i++) if (isOn(mask, i)) squares += (x.data[i]! - mean) ** 2;
        const variance = n === 1 ? 0 : squares / (n - 1);
        const scale = 1 / Math.sqrt(variance + VARIANCE_EPSILON);
        const shift = shiftMean ? 0 : mean;
        for (let i = 0; i < x.data.length; i++) y[i] = isOn(mask, i) ? (x.data[i]! - mean) * scale + shift : 0;
        return { y: unsafeTensor(x.dtype, x.shape, y) as FloatTensor };
      }),
    ),
);
