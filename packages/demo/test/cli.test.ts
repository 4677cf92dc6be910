import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
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
  });

  it('rejects a bad option with a usage message and exit code 2', () => {
    const r = spawnSync(process.execPath, [main, '--seed', 'abc'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('usage: pnpm demo');
  });
});
