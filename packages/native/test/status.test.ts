import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { backend, backendStatus, defaultBackend } from '@rlhf/kernels';
import { cpuIsa, forceIsa, getNumThreads, nativeStatus, setNumThreads } from '@rlhf/native';
import { expectClose, labels, logits, requireNative, rng } from './helpers.js';

const raw = requireNative();

describe('loading and registration', () => {
  it('the addon loaded (a build failure here fails CI instead of skipping)', () => {
    const s = nativeStatus();
    expect(s.loaded, s.loaded ? '' : s.reason).toBe(true);
  });

  it('registers the cpu backend, which becomes the default', () => {
    expect(E.isRight(backend('cpu'))).toBe(true);
    expect(backendStatus().find((b) => b.name === 'cpu')?.available).toBe(true);
    expect(defaultBackend().name).toBe(process.env['RLHF_BACKEND'] ?? 'cpu');
  });

  it('the cuda backend is registered or says why it is not', () => {
    const cuda = backendStatus().find((b) => b.name === 'cuda')!;
    expect(cuda.available || (cuda.reason ?? '').length > 0).toBe(true);
  });
});

describe('ISA paths and threads', () => {
  it('reports the best path, forces each supported one, and refuses the rest', () => {
    const s = nativeStatus();
    if (!s.loaded) throw new Error(s.reason);
    expect(s.supportedIsas).toContain('scalar');
    expect(s.isa).toBe(s.supportedIsas[0]);
    for (const isa of s.supportedIsas) expect(forceIsa(isa)).toEqual(E.right(isa));
    expect(cpuIsa()).toBe('scalar');
    for (const isa of ['avx2', 'avx512'] as const)
      if (!s.supportedIsas.includes(isa)) expect(E.isLeft(forceIsa(isa))).toBe(true);
    expect(forceIsa(null)).toEqual(E.right(s.supportedIsas[0]));
  });

  it('the thread count is settable, defaults to the cores, and does not change results', () => {
    const cores = getNumThreads();
    expect(cores).toBeGreaterThanOrEqual(1);
    const N = 64, V = 4099;
    const r = rng(9);
    const x = logits(r, N, V, 'wide');
    const y = labels(r, x, N, V, -100);
    const run = () => {
      const out = { logprobs: new Float32Array(N), entropy: new Float32Array(N) };
      raw.logprobs({ logits: x, labels: y, N, V, temperature: 1, ignoreIndex: -100, ...out });
      return out;
    };
    try {
      expect(setNumThreads(1)).toEqual(E.right(1));
      const one = run();
      expect(setNumThreads(3)).toEqual(E.right(3));
      const three = run();
      expect(Array.from(three.logprobs)).toEqual(Array.from(one.logprobs));
      expectClose(three.entropy, one.entropy, { rtol: 0, atol: 0 });
    } finally {
      expect(setNumThreads(0)).toEqual(E.right(cores));
    }
  });
});
