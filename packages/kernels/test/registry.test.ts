import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as E from 'fp-ts/lib/Either.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  backend,
  backendStatus,
  defaultBackend,
  jsRaw,
  makeKernels,
  registerBackend,
  registerUnavailable,
  resolveBackend,
  setDefaultBackend,
} from '@rlhf/kernels';

describe('backend registry', () => {
  afterEach(() => {
    registerUnavailable('cpu', 'reset by the test');
    setDefaultBackend('js');
  });

  it('always has js, and says why the others are unavailable', () => {
    expect(E.isRight(backend('js'))).toBe(true);
    registerUnavailable('cuda', 'no GPU in this test');
    const r = backend('cuda');
    expect(E.isLeft(r) && r.left.kind === 'param' && r.left.message).toMatch(/no GPU in this test/);
    expect(backendStatus().find((s) => s.name === 'cuda')).toEqual({ name: 'cuda', available: false, reason: 'no GPU in this test' });
    expect(E.isLeft(backend('tpu'))).toBe(true);
  });

  it('warns once, in a process warning, when RLHF_BACKEND names a backend it cannot use', () => {
    // A fresh process: the choice made by setDefaultBackend in this one would hide the variable.
    const registry = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `const k = await import(${JSON.stringify(registry)}); console.log(k.defaultBackend().name, k.defaultBackend().name);`;
    for (const [env, used, why] of [['bogus', 'js', 'is not one of js, cpu, cuda'], ['cuda', 'js', 'is unavailable'], ['js', 'js', '']]) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, RLHF_BACKEND: env } });
      expect(r.stdout.trim(), env).toBe(`${used} ${used}`);
      expect(r.stderr.match(/Warning: RLHF_BACKEND=/g)?.length ?? 0, env).toBe(why ? 1 : 0);
      if (why) expect(r.stderr).toContain(`RLHF_BACKEND=${env} ${why}`);
    }
  });

  it('prefers cpu over js once registered, unless a default was chosen', () => {
    const cpu = makeKernels('cpu', jsRaw);
    registerBackend(cpu);
    expect(E.isRight(setDefaultBackend('cpu'))).toBe(true);
    expect(defaultBackend().name).toBe('cpu');
    setDefaultBackend('js');
    expect(defaultBackend().name).toBe('js');
    expect(resolveBackend('cpu')).toEqual(E.right(cpu));
    expect(resolveBackend(undefined)).toEqual(E.right(defaultBackend()));
  });

  it('a backend that throws inside a kernel gives a typed Left, not an exception', () => {
    const broken = makeKernels('cpu', {
      ...jsRaw,
      logsoftmax: () => {
        throw Object.assign(new Error('native said: label out of range'), { kind: 'index' });
      },
    });
    const r = broken.logsoftmax()({ logits: { dtype: 'float32', shape: [1, 1], data: new Float32Array(1) } });
    expect(E.isLeft(r) && r.left.kind).toBe('index');
  });

  it('async ops fall back to the synchronous kernels and keep typed errors', async () => {
    const k = makeKernels('js', jsRaw);
    const ok = await k.async.logsoftmax()({ logits: { dtype: 'float64', shape: [1, 2], data: Float64Array.from([0, 0]) } })();
    expect(E.isRight(ok) && Array.from(ok.right.logsoftmax.data)).toEqual([-Math.log(2), -Math.log(2)]);
    const bad = await k.async.logsoftmax({ temperature: 0 })({ logits: { dtype: 'float64', shape: [1, 2], data: new Float64Array(2) } })();
    expect(E.isLeft(bad) && bad.left.kind).toBe('param');
  });
});
