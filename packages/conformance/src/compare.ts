import type { Tensor } from '@rlhf/tensor';

/** How one output compared: the worst element by `|got − expected| − (atol + rtol·|expected|)`. */
export interface Mismatch {
  readonly output: string;
  readonly message: string;
}

const sameSpecial = (got: number, want: number): boolean =>
  Number.isNaN(want) ? Number.isNaN(got) : got === want; // ±Inf match only themselves

/**
 * Checks `got` against the expected float64 tensor: every element within `atol + rtol·|expected|`,
 * NaN only against NaN, ±Inf only against the same infinity. A scalar output may be a number.
 */
export const compareOutput = (
  output: string,
  got: unknown,
  expected: Tensor,
  tol: { rtol: number; atol: number },
): Mismatch | undefined => {
  if (got === undefined) return { output, message: 'missing from the result' };
  const values: ArrayLike<number> | undefined =
    typeof got === 'number' ? [got] : (got as Tensor | undefined)?.data ?? undefined;
  if (values === undefined) return { output, message: `not a number or tensor: ${String(got)}` };
  const shape = typeof got === 'number' ? [] : (got as Tensor).shape;
  if (typeof got !== 'number' && expected.shape.length > 0 && shape.join(',') !== expected.shape.join(','))
    return { output, message: `shape [${shape.join(', ')}], expected [${expected.shape.join(', ')}]` };
  if (values.length !== expected.data.length)
    return { output, message: `${values.length} elements, expected ${expected.data.length}` };
  let worst = -Infinity;
  let worstAt = -1;
  for (let i = 0; i < values.length; i++) {
    const g = values[i]!;
    const w = expected.data[i]!;
    const excess = Number.isFinite(w) ? (Number.isFinite(g) ? Math.abs(g - w) - (tol.atol + tol.rtol * Math.abs(w)) : Infinity) : sameSpecial(g, w) ? -Infinity : Infinity;
    if (excess > worst || worstAt < 0) {
      worst = excess;
      worstAt = i;
    }
  }
  if (worst <= 0) return undefined;
  const g = values[worstAt]!;
  const w = expected.data[worstAt]!;
  return {
    output,
    message: `worst error ${Number.isFinite(g - w) ? Math.abs(g - w).toExponential(3) : 'non-finite'} at [${worstAt}]: got ${g}, expected ${w}; tolerance rtol ${tol.rtol} atol ${tol.atol}`,
  };
};
