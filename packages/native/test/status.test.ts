import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as E from 'fp-ts/lib/Either.js';
import { backend, backendStatus, defaultBackend } from '@rlhf/kernels';
import { NATIVE_ABI_VERSION, cpuIsa, forceIsa, getNumThreads, loadAddon, nativeStatus, setNumThreads } from '@rlhf/native';
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

describe('versions', () => {
  const header = readFileSync(new URL('../../../native/include/rlhf/kernels.h', import.meta.url), 'utf8');
  const define = (name: string) => Number(new RegExp(`^#define RLHF_${name} (\\d+)$`, 'm').exec(header)?.[1]);

  it("the header's release is the package's, and its ABI number the one the bindings expect", () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(['VERSION_MAJOR', 'VERSION_MINOR', 'VERSION_PATCH'].map(define).join('.')).toBe(version);
    expect(define('ABI_VERSION')).toBe(NATIVE_ABI_VERSION);
    const s = nativeStatus();
    if (!s.loaded) throw new Error(s.reason);
    expect([s.version, s.abiVersion]).toEqual([version, NATIVE_ABI_VERSION]);
  });

  it('refuses an addon built for another ABI, or one that predates versioning, and says how to rebuild', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rlhf-addon-'));
    const saved = process.env['RLHF_NATIVE_ADDON'];
    try {
      for (const [exported, said] of [
        [`{ abiVersion: ${NATIVE_ABI_VERSION + 1} }`, `C ABI ${NATIVE_ABI_VERSION + 1}`],
        ['{}', 'C ABI unversioned'],
      ] as const) {
        const path = join(dir, `addon-${said.length}.cjs`); // require() loads a script like a .node file
        writeFileSync(path, `module.exports = ${exported};`);
        process.env['RLHF_NATIVE_ADDON'] = path;
        const load = loadAddon();
        expect(load.addon).toBeUndefined();
        expect('error' in load && load.error).toMatch(new RegExp(`${said}.*need ${NATIVE_ABI_VERSION}.*build:native`));
      }
    } finally {
      if (saved === undefined) delete process.env['RLHF_NATIVE_ADDON'];
      else process.env['RLHF_NATIVE_ADDON'] = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
