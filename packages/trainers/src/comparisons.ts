import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  emptyError,
  expectFloat,
  expectInt32,
  expectMask,
  expectRank,
  expectShape,
  formatShape,
  optional,
  unsafeTensor,
  type FloatTensor,
  type IntTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';
import { checkHasPair, checkRanks } from '@rlhf/kernels';
import { checkMaskFor, checkTokens } from './model.js';
import { takeRows } from './rows.js';

/**
 * K responses per prompt ranked by an annotator: `tokens [B, K, L]` (prompt and response),
 * `mask [B, K, L]` marking the response positions, `ranks [B, K]` (int32, smaller is preferred,
 * equal ranks tie, −1 pads a missing response).
 */
export interface RankingBatch {
  readonly tokens: IntTensor;
  readonly mask: MaskTensor;
  readonly ranks: IntTensor;
}

/** Preferred and dispreferred sequences, each [B, L] with its response mask, and an optional margin [B]. */
export interface PairBatch {
  readonly chosen: IntTensor;
  readonly chosenMask: MaskTensor;
  readonly rejected: IntTensor;
  readonly rejectedMask: MaskTensor;
  readonly margin?: FloatTensor | null;
}

/** Flattens [B, K, L] to [B·K, L] (no copy). */
export const flattenResponses = <T extends IntTensor | MaskTensor>(t: T): T =>
  unsafeTensor(t.dtype, [t.shape[0]! * t.shape[1]!, t.shape[2]!], t.data as never) as T;

const nonEmpty = (name: string, shape: readonly number[]): Result<void> =>
  shape.every((d) => d > 0) ? E.right(undefined) : E.left(emptyError(`${name} is empty (shape ${formatShape(shape)})`));

/** Every check a ranking batch must pass before any model runs on it. */
export const checkRankingBatch = (batch: RankingBatch, vocabSize: number): Result<RankingBatch> =>
  pipe(
    expectInt32('tokens', batch?.tokens),
    E.chain((t) => expectRank(3)('tokens', t)),
    E.chainFirst((t) => nonEmpty('tokens', t.shape)),
    E.chainFirst((t) => checkTokens('tokens', flattenResponses(t), vocabSize)),
    E.bindTo('tokens'),
    E.bind('mask', ({ tokens }) =>
      pipe(expectMask('mask', batch.mask), E.chain((m) => expectShape(tokens.shape)('mask', m))) as Result<MaskTensor>,
    ),
    E.bind('ranks', ({ tokens }) =>
      pipe(expectInt32('ranks', batch.ranks), E.chain((r) => expectShape(tokens.shape.slice(0, 2))('ranks', r))),
    ),
    // The ranking loss's own checks: every rank in [0, K) or −1, and some prompt with a pair.
    E.chainFirst(({ ranks }) => pipe(checkRanks(ranks.data, ranks.shape[1]!), E.chain(() => checkHasPair(ranks.data, ranks.shape[1]!)))),
    E.chainFirst(({ mask, ranks }) => responsesNonEmpty(mask, ranks)),
  );

/** The first row of `mask` (rows of `length` positions) that `keep` selects and that has no valid position, or −1. */
const firstEmptyRow = (mask: MaskTensor, length: number, keep: (row: number) => boolean = () => true): number => {
  const rows = mask.data.length / length;
  for (let r = 0; r < rows; r++) {
    if (!keep(r)) continue;
    let t = 0;
    while (t < length && mask.data[r * length + t] === 0) t++;
    if (t === length) return r;
  }
  return -1;
};

/** A ranked (non-padded) response with no response token cannot be scored. */
const responsesNonEmpty = (mask: MaskTensor, ranks: IntTensor): Result<void> => {
  const [, K, L] = mask.shape as [number, number, number];
  const r = firstEmptyRow(mask, L, (row) => ranks.data[row]! >= 0);
  return r < 0 ? E.right(undefined) : E.left(emptyError(`mask: response ${r % K} of prompt ${Math.floor(r / K)} has no response token`));
};

/** Neither side of a pair may be empty: it would score 0 (a sequence log-prob of 0) and be trained on. */
const pairSideNonEmpty = (name: string, mask: MaskTensor): Result<void> => {
  const r = firstEmptyRow(mask, mask.shape[1]!);
  return r < 0 ? E.right(undefined) : E.left(emptyError(`${name}: pair ${r} has no response token`));
};

/** Every check a pair batch must pass before any model runs on it. */
export const checkPairBatch = (batch: PairBatch, vocabSize: number): Result<PairBatch> =>
  pipe(
    E.Do,
    E.bind('chosen', () => checkTokens('chosen', batch?.chosen, vocabSize)),
    E.chainFirst(({ chosen }) => nonEmpty('chosen', chosen.shape)),
    E.bind('rejected', ({ chosen }) =>
      pipe(checkTokens('rejected', batch.rejected, vocabSize), E.chain((r) => expectShape([chosen.shape[0]!, -1])('rejected', r))),
    ),
    E.chainFirst(({ rejected }) => nonEmpty('rejected', rejected.shape)),
    E.bind('chosenMask', ({ chosen }) => checkMaskFor('chosenMask', batch.chosenMask, chosen)),
    E.bind('rejectedMask', ({ rejected }) => checkMaskFor('rejectedMask', batch.rejectedMask, rejected)),
    E.chainFirst(({ chosenMask, rejectedMask }) =>
      pipe(pairSideNonEmpty('chosenMask', chosenMask), E.chain(() => pairSideNonEmpty('rejectedMask', rejectedMask))),
    ),
    E.bind('margin', ({ chosen }) =>
      pipe(
        optional(expectFloat)('margin', batch.margin),
        E.chain((m) => (m ? expectShape([chosen.shape[0]!])('margin', m) : E.right(undefined))),
      ) as Result<FloatTensor | undefined>,
    ),
  );

/**
 * Expands rankings into pairs: every (i, j) of a prompt with `0 ≤ rank i < rank j`
 * (ties and padded slots form no pair), for pairwise losses and DPO.
 */
export const rankingToPairs = (batch: RankingBatch): PairBatch => {
  const [B, K] = batch.tokens.shape as [number, number, number];
  const rows: [number, number][] = [];
  for (let b = 0; b < B; b++)
    for (let i = 0; i < K; i++)
      for (let j = 0; j < K; j++) {
        const ri = batch.ranks.data[b * K + i]!;
        if (ri >= 0 && ri < batch.ranks.data[b * K + j]!) rows.push([b * K + i, b * K + j]);
      }
  const pick = (side: 0 | 1) => rows.map((r) => r[side]);
  const flatTokens = flattenResponses(batch.tokens);
  const flatMask = flattenResponses(batch.mask);
  return {
    chosen: takeRows(flatTokens, pick(0)),
    chosenMask: takeRows(flatMask, pick(0)),
    rejected: takeRows(flatTokens, pick(1)),
    rejectedMask: takeRows(flatMask, pick(1)),
  };
};
