/**
 * A seeded pseudo-random generator (sfc32, 128-bit state) whose state can be saved in a checkpoint
 * and restored, so that a resumed run draws exactly the numbers the uninterrupted run would have.
 * Trainers and the demo take all their randomness from it (never Math.random).
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** An index drawn with probability proportional to `weights[i]` (non-negative, not all 0). */
  categorical(weights: ArrayLike<number>): number;
  /** A random permutation of 0..n−1 (Fisher–Yates). */
  permutation(n: number): Int32Array;
  /** The generator's state, to store in a checkpoint. */
  state(): readonly number[];
}

/** splitmix32: spreads a seed over the four state words. */
const splitmix32 = (seed: number) => {
  let s = seed >>> 0;
  return (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
};

/** Whether `u` is a state `rng` can resume: four 32-bit words (uint32, or int32 as older checkpoints hold them). */
export const isRngState = (u: unknown): u is readonly number[] =>
  Array.isArray(u) && u.length === 4 && u.every((x) => Number.isInteger(x) && x >= -0x80000000 && x <= 0xffffffff);

/** A generator from a seed, or from a state saved by `state()`. */
export const rng = (seedOrState: number | readonly number[]): Rng => {
  let a: number, b: number, c: number, d: number;
  if (typeof seedOrState === 'number') {
    const mix = splitmix32(seedOrState);
    [a, b, c, d] = [mix(), mix(), mix(), mix()];
  } else {
    [a, b, c, d] = seedOrState.map((x) => x >>> 0) as [number, number, number, number];
  }
  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  const next = (): number => nextUint32() / 4294967296;
  const self: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    normal: () => {
      const u = 1 - next(); // (0, 1]: log(u) is finite
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
    categorical: (weights) => {
      let total = 0;
      for (let i = 0; i < weights.length; i++) total += weights[i]!;
      let u = next() * total;
      for (let i = 0; i < weights.length; i++) {
        u -= weights[i]!;
        if (u < 0) return i;
      }
      // Rounding left u ≥ 0 after the last subtraction: the last index with non-zero weight.
      for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
      return weights.length - 1;
    },
    permutation: (n) => {
      const p = Int32Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      return p;
    },
    state: () => [a >>> 0, b >>> 0, c >>> 0, d >>> 0],
  };
  return self;
};
