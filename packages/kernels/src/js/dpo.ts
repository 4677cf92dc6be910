import type { LossStats, RawDpo } from '../raw.js';
import { logSigmoid, sigmoid } from './sigmoid.js';

/**
 * SPEC §1 preference.dpo: `h = (π_c − ref_c) − (π_r − ref_r)`; sigmoid, hinge or IPO loss of h,
 * mean over the batch, with implicit rewards `β(π − ref)`.
 */
export const dpo = ({
  B,
  policyChosen,
  policyRejected,
  refChosen,
  refRejected,
  beta,
  lossType,
  labelSmoothing: eps,
  gradPolicyChosen,
  gradPolicyRejected,
  rewardsChosen,
  rewardsRejected,
}: RawDpo): LossStats => {
  let loss = 0;
  let correct = 0;
  for (let b = 0; b < B; b++) {
    const chosenRatio = policyChosen[b]! - refChosen[b]!;
    const rejectedRatio = policyRejected[b]! - refRejected[b]!;
    const h = chosenRatio - rejectedRatio;
    let l: number;
    let dl: number; // dℓ/dh
    if (lossType === 'sigmoid') {
      l = -(1 - eps) * logSigmoid(beta * h) - (eps === 0 ? 0 : eps * logSigmoid(-beta * h));
      dl = beta * (sigmoid(beta * h) - (1 - eps));
    } else if (lossType === 'hinge') {
      const slack = 1 - beta * h;
      l = Math.max(0, slack);
      dl = slack > 0 ? -beta : slack <= 0 ? 0 : slack; // 0 at βh = 1 exactly; a NaN h propagates
    } else {
      const e = h - 1 / (2 * beta);
      l = e * e;
      dl = 2 * e;
    }
    loss += l;
    gradPolicyChosen[b] = dl / B;
    gradPolicyRejected[b] = -dl / B;
    rewardsChosen[b] = beta * chosenRatio;
    rewardsRejected[b] = beta * rejectedRatio;
    if (beta * chosenRatio > beta * rejectedRatio) correct++;
  }
  return { loss: loss / B, accuracy: correct / B };
};
