import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The command a user runs (`pnpm demo` = node packages/demo/dist/main.js); `pnpm test` builds first.
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe.skipIf(!existsSync(main))('pnpm demo (built CLI)', () => {
  it('runs the quick size end to end, prints the backend and a summary, and writes its run folder', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'demo-cli-')), 'run');
    const r = spawnSync(process.execPath, [main, '--quick', '--seed', '5', '--out', out], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kernels: (cpu|js|cuda)/);
    expect(r.stdout).toContain('held-out pair accuracy');
    expect(r.stdout).toContain('PPO, β = 0');
    for (const f of ['report.json', 'metrics.jsonl', 'plot.svg']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).seed).toBe(5);

    // The finished run resumes to the same report.
    const again = spawnSync(process.execPath, [main, '--resume', out], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toContain('PPO, β = 0');
    expect(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).seed).toBe(5);

    // A fresh run into it would append to its metrics: refused, pointing to --resume.
    const over = spawnSync(process.execPath, [main, '--quick', '--seed', '2', '--out', out], { encoding: 'utf8' });
    expect(over.status).toBe(2);
    expect(over.stderr).toContain(`--resume ${out}`);
  });

  it('refuses --resume on a folder that holds no run, and --resume with run options, with exit code 2', () => {
    const empty = mkdtempSync(join(tmpdir(), 'demo-cli-empty-'));
    const r = spawnSync(process.execPath, [main, '--resume', empty], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('cannot resume:');
    expect(r.stderr).toContain(`${empty} is not a demo run folder`);
    const mixed = spawnSync(process.execPath, [main, '--resume', empty, '--seed', '3'], { encoding: 'utf8' });
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toContain('drop --seed');
    expect(mixed.stderr).toContain('pnpm demo --resume DIR');
  });

  it('rejects a bad option with a usage message and exit code 2', () => {
    // 2^32 + 1 would be seed 1's run; Infinity would fail only after pretraining, in a folder no resume reads.
    for (const bad of [['--seed', 'abc'], ['--seed', '4294967297'], ['--seed', '0x10'], ['--seed', ''], ['--kl-target', 'Infinity'], ['--out', '']]) {
      const r = spawnSync(process.execPath, [main, ...bad], { encoding: 'utf8' });
      expect(r.status, bad.join(' ')).toBe(2);
      expect(r.stderr).toContain('usage: pnpm demo');
    }
  });

  it('reports an output folder it cannot write as a failure, with exit code 1 and no stack trace', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'demo-cli-file-')), 'a-file');
    writeFileSync(file, '');
    const r = spawnSync(process.execPath, [main, '--quick', '--out', file], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^demo failed: .*EEXIST/);
    expect(r.stderr).not.toContain('    at ');
  });
});
