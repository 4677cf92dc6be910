import { expect } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { jsRaw, type RawKernels } from '@rlhf/kernels';
import { tensor } from '@rlhf/tensor';
import { cpuRaw, forceIsa, nativeStatus, type CpuIsa } from '@rlhf/native';

/**
 * The addon must have been built: here and in CI a compiler is present, so a missing addon is a
 * failure, not a reason to skip. (RLHF_ALLOW_NO_NATIVE=1 is for machines without a compiler.)
 */
export const requireNative = (): RawKernels => {
  const status = nativeStatus();
  if (!status.loaded && process.env['RLHF_ALLOW_NO_NATIVE'] !== '1')
    throw new Error(`the native addon is not loaded: ${status.reason}`);
  if (!cpuRaw) throw new Error('the cpu raw kernels are missing although the addon loaded');
  return cpuRaw;
};

/** Every SIMD path this CPU and build support (each is forced in turn by `onEveryIsa`). */
export const isas = (): readonly CpuIsa[] => {
  const s = nativeStatus();
  return s.loaded ? s.supportedIsas : [];
};

/** Runs f on each ISA path, restoring the best path afterwards. */
export const onEveryIsa = (f: (isa: CpuIsa) => void): void => {
  try {
    for (const isa of isas()) {
      expect(E.isRight(forceIsa(isa))).toBe(true);
      f(isa);
    }
  } finally {
    forceIsa(null);
  }
};

/** A deterministic generator (mulberry32), so a failure reproduces. */
export const rng = (seed: number) => {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    uniform: (lo: number, hi: number) => lo + (hi - lo) * next(),
    int: (n: number) => Math.floor(next() * n),
    normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
  };
};
export type Rng = ReturnType<typeof rng>;

export type LogitsStyle = 'normal' | 'wide' | 'huge' | 'neg-inf';

/**
 * [N, V] float32 logits: `normal` ~ N(0, 2²); `wide` uniform in ±30; `huge` uniform in ±1e4
 * (e^z overflows float without the running max); `neg-inf` normal with ~1/4 of the entries −∞
 * (vocabulary masking), keeping at least one finite entry per row.
 */
export const logits = (r: Rng, N: number, V: number, style: LogitsStyle = 'normal'): Float32Array => {
  const x = new Float32Array(N * V);
  for (let i = 0; i < x.length; i++) {
    x[i] = style === 'wide' ? r.uniform(-30, 30) : style === 'huge' ? r.uniform(-1e4, 1e4) : 2 * r.normal();
    if (style === 'neg-inf' && r.next() < 0.25) x[i] = -Infinity;
  }
  if (style === 'neg-inf') for (let n = 0; n < N; n++) x[n * V + r.int(V)] = r.normal();
  return x;
};

/** Labels in [0, V), a label of −∞ logit avoided unless asked, and some rows set to ignoreIndex. */
export const labels = (r: Rng, x: Float32Array, N: number, V: number, ignoreIndex: number, ignoreFraction = 0.25) => {
  const y = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    if (r.next() < ignoreFraction) {
      y[n] = ignoreIndex;
      continue;
    }
    let v = r.int(V);
    for (let tries = 0; tries < 8 && x[n * V + v] === -Infinity; tries++) v = r.int(V);
    y[n] = v;
  }
  return y;
};

/** Fills the rows whose label is ignored with NaN and ±Inf: they must never reach an output. */
export const poisonIgnoredRows = (x: Float32Array, y: Int32Array, V: number, ignoreIndex: number): void => {
  for (let n = 0; n < y.length; n++)
    if (y[n] === ignoreIndex) for (let v = 0; v < V; v++) x[n * V + v] = v % 3 === 0 ? NaN : v % 3 === 1 ? Infinity : -Infinity;
};

export const randomVector = (r: Rng, n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => scale * r.normal());

/**
 * Expects `got` to match `want` elementwise within |got − want| ≤ atol + rtol·|want|, with NaN only
 * where NaN is expected and infinities exactly. Reports the worst element.
 */
export const expectClose = (
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  {
    rtol = 1e-4,
    atol = 1e-5,
    label = '',
    slack,
  }: { rtol?: number; atol?: number; label?: string; /** added to element i's tolerance */ slack?: ArrayLike<number> } = {},
): void => {
  expect(got.length, `${label}: length`).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      // NaN matches only NaN, an infinity only the same infinity.
      if (!(Number.isNaN(g) && Number.isNaN(w)) && g !== w) {
        worst = i;
        worstExcess = Infinity;
        break;
      }
      continue;
    }
    const excess = Math.abs(g - w) - (atol + rtol * Math.abs(w) + (slack?.[i] ?? 0));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) expect.fail(`${label}: element ${worst} is ${got[worst]}, expected ${want[worst]} (rtol ${rtol}, atol ${atol})`);
};

/** The js reference over the same float32 inputs (it computes in float64 and rounds the outputs once). */
export const reference: RawKernels = jsRaw;

/** Vocabulary sizes of the issue: 1, 7, 33 (tails shorter than a vector), 1031 (a prime), 50257 (GPT-2). */
export const VOCABS = [1, 7, 33, 1031, 50257] as const;
/** Rows per case: many for small V, a few for the big V so that tests stay fast. */
export const rowsFor = (V: number): number => (V >= 50000 ? 3 : V >= 1000 ? 9 : 17);

/** A tensor from a typed array, for calls through the facade (throws on a bad shape: test inputs are built right). */
export const t = <A extends Float32Array | Float64Array | Int32Array>(data: A, shape: readonly number[]) =>
  E.getOrElseW((e: Error) => {
    throw e;
  })(tensor(data, shape));

/** Bit-identical arrays (fast on millions of elements, unlike a deep toEqual). */
export const expectSameBits = (got: Float32Array, want: Float32Array, label = ''): void => {
  expect(got.length, label).toBe(want.length);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) expect.fail(`${label}: element ${i} is ${got[i]}, expected ${want[i]}`);
};
