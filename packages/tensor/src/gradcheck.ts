/**
 * Central finite differences of a scalar function of a float64 vector: the check every analytic
 * gradient in the project is tested against. `f` must not keep `x` (it is perturbed in place).
 */
export const numericGradient = (f: (x: Float64Array) => number, x: Float64Array, h = 1e-6): Float64Array => {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    x[i] = xi + h;
    const up = f(x);
    x[i] = xi - h;
    const down = f(x);
    x[i] = xi;
    g[i] = (up - down) / (2 * h);
  }
  return g;
};

/** Largest `|a − b| / (atol + rtol·|b|)` over two arrays: ≤ 1 means they agree. */
export const maxScaledError = (a: ArrayLike<number>, b: ArrayLike<number>, rtol = 1e-5, atol = 1e-7): number => {
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (atol + rtol * Math.abs(b[i]!)));
  return a.length === b.length ? worst : Infinity;
};
