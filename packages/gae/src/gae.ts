import * as E from 'fp-ts/lib/Either.js';
import { pipe } from 'fp-ts/lib/function.js';
import {
  commonFloatDType,
  floatOfRank,
  floatShaped,
  inClosedRange,
  isOn,
  maskShaped,
  optional,
  outputBuffer,
  separateOutputs,
  total,
  unsafeTensor,
  type FloatArray,
  type FloatTensor,
  type MaskTensor,
  type Result,
} from '@rlhf/tensor';

export interface GaeParams {
  /** Discount γ ∈ [0, 1], default 1. */
  readonly gamma?: number | null;
  /** Trace decay λ ∈ [0, 1], default 0.95. */
  readonly lambda?: number | null;
}
export interface GaeInputs {
  /** [B, T] */
  readonly rewards: FloatTensor;
  /** [B, T] */
  readonly values: FloatTensor;
  /** [B, T] 0/1 (default all ones): positions with 0 are not part of the trajectory. */
  readonly mask?: MaskTensor | null;
  /** [B, T] 0/1 (default zeros): 1 = the episode ended after this step. */
  readonly dones?: MaskTensor | null;
  /** [B] the value after each row's last valid position (default zeros). */
  readonly bootstrapValues?: FloatTensor | null;
}
export interface GaeOutputs {
  /** [B, T], 0 at masked positions. */
  readonly advantages: FloatTensor;
  /** [B, T] advantages + values, 0 at masked positions. */
  readonly returns: FloatTensor;
}
export interface GaeOut {
  readonly advantages?: FloatArray;
  readonly returns?: FloatArray;
}

/**
 * SPEC §4 gae: generalised advantage estimation over each row's valid positions, walking backwards;
 * masked positions are skipped (each valid position links to the next valid one), `dones` cut the
 * bootstrap, and the row's last valid position bootstraps from `bootstrapValues`.
 *
 * @example pipe({ rewards, values, mask }, gae({ gamma: 1, lambda: 0.95 }))
 */
export const gae = total(
  (params?: GaeParams, out?: GaeOut) =>
  (inputs: GaeInputs): Result<GaeOutputs> =>
    pipe(
      E.Do,
      E.bind('rewards', () => floatOfRank(2)('rewards', inputs?.rewards)),
      E.bind('values', ({ rewards }) => floatShaped(rewards.shape)('values', inputs.values)),
      E.bind('mask', ({ rewards }) => optional(maskShaped(rewards.shape))('mask', inputs.mask)),
      E.bind('dones', ({ rewards }) => optional(maskShaped(rewards.shape))('dones', inputs.dones)),
      E.bind('bootstrapValues', ({ rewards }) =>
        optional(floatShaped([rewards.shape[0]!]))('bootstrapValues', inputs.bootstrapValues),
      ),
      E.bind('dtype', ({ rewards, values, bootstrapValues }) => commonFloatDType({ rewards, values, bootstrapValues })),
      E.bind('gamma', () => inClosedRange('gamma', params?.gamma, 1, 0, 1)),
      E.bind('lambda', () => inClosedRange('lambda', params?.lambda, 0.95, 0, 1)),
      E.bind('advantages', ({ rewards, dtype }) => outputBuffer('advantages', dtype, rewards.data.length, out?.advantages)),
      E.bind('returns', ({ rewards, dtype }) => outputBuffer('returns', dtype, rewards.data.length, out?.returns)),
      // Position i's reward and done are read once, before its outputs are written: either output may
      // be written over them. Not over the values: v[i] is read again as the next position's value.
      E.chainFirst(({ rewards, values, mask, dones, bootstrapValues, advantages, returns }) =>
        separateOutputs(
          { advantages, returns },
          { rewards: rewards.data, values: values.data, mask: mask?.data, dones: dones?.data, bootstrapValues: bootstrapValues?.data },
          [
            ['advantages', 'rewards'],
            ['returns', 'rewards'],
            ['advantages', 'dones'],
            ['returns', 'dones'],
          ],
        ),
      ),
      E.map(({ rewards, values, mask, dones, bootstrapValues, dtype, gamma, lambda, advantages, returns }) => {
        const [B, T] = rewards.shape as [number, number];
        const r = rewards.data;
        const v = values.data;
        for (let b = 0; b < B; b++) {
          // Read only once the row has a valid position: an empty row's bootstrap value never leaks.
          let nextValue = Number.NaN;
          let nextAdvantage = 0;
          let atRowEnd = true;
          for (let t = T - 1; t >= 0; t--) {
            const i = b * T + t;
            if (!isOn(mask, i)) {
              advantages[i] = 0;
              returns[i] = 0;
              continue;
            }
            if (atRowEnd) nextValue = bootstrapValues ? bootstrapValues.data[b]! : 0;
            const c = dones ? 1 - dones.data[i]! : 1;
            // A factor of exactly 0 (a done, γ = 0, λ = 0) removes its term even when the other is not finite.
            const discount = gamma * c;
            const trace = discount * lambda;
            const delta = r[i]! + (discount === 0 ? 0 : discount * nextValue) - v[i]!;
            const advantage = delta + (trace === 0 || atRowEnd ? 0 : trace * nextAdvantage);
            advantages[i] = advantage;
            returns[i] = advantage + v[i]!;
            nextValue = v[i]!;
            nextAdvantage = advantage;
            atRowEnd = false;
          }
        }
        return {
          advantages: unsafeTensor(dtype, rewards.shape, advantages) as FloatTensor,
          returns: unsafeTensor(dtype, rewards.shape, returns) as FloatTensor,
        };
      }),
    ),
);
