import type { LossStats, RawPairwise } from '../raw.js';
import { logSigmoid, sigmoid } from './sigmoid.js';

/**
 * SPEC §1 preference.pairwise (Bradley–Terry): `d = chosen − rejected − margin`,
 * `ℓ = −(1−ε)·logσ(d) − ε·logσ(−d) + c·(chosen + rejected)²`, mean over the batch.
 */
export const pairwise = ({
  B,
  chosen,
  rejected,
  margin,
  labelSmoothing: eps,
  centerCoef: c,
  gradChosen,
  gradRejected,
}: RawPairwise): LossStats => {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const d = chosen[b]! - rejected[b]! - (margin ? margin[b]! : 0);
    const sum = chosen[b]! + rejected[b]!;
    const center = c === 0 ? 0 : c * sum * sum;
    const centerGrad = c === 0 ? 0 : 2 * c * sum;
    loss += -(1 - eps) * logSigmoid(d) - (eps === 0 ? 0 : eps * logSigmoid(-d)) + center;
    const g = sigmoid(d) - (1 - eps);
    gradChosen[b] = (g + centerGrad) / B;
    gradRejected[b] = (-g + centerGrad) / B;
    if (chosen[b]! > rejected[b]!) correct++;
  }
  return { loss: loss / B, accuracy: correct / B };
};
