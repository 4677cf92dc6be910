/** σ(x) without overflow for either sign. */
export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** log σ(x) = −softplus(−x) = min(x, 0) − log1p(e^{−|x|}), stable for any x. */
export const logSigmoid = (x: number): number => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
