#!/usr/bin/env node
// The project's test command (`pnpm test`): the vitest suites of every package, then the
// conformance cases on every backend, ending with one closing line that counts both.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 28 });

const report = join(mkdtempSync(join(tmpdir(), 'rlhf-test-')), 'vitest.json');
const vitest = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let unit = { passed: 0, failed: 0, skipped: 0 };
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  unit = { passed: r.numPassedTests, failed: r.numFailedTests + (r.numFailedTestSuites ?? 0), skipped: r.numPendingTests + r.numTodoTests };
} catch {
  unit.failed = 1; // vitest died before writing its report
}

const conf = run('node', ['packages/conformance/dist/cli.js', '--backend', 'all']);
process.stdout.write(conf.stdout);
const m = /conformance: (\d+) passed, (\d+) failed(?:, (\d+) skipped)?/.exec(conf.stdout ?? '');
const cases = m ? { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) } : { passed: 0, failed: 1, skipped: 0 };

const passed = unit.passed + cases.passed;
const failed = unit.failed + cases.failed + (vitest.status === 0 ? 0 : unit.failed === 0 ? 1 : 0);
const skipped = unit.skipped + cases.skipped;
console.log(`unit tests: ${unit.passed} passed, ${unit.failed} failed, ${unit.skipped} skipped`);
console.log(`conformance cases: ${cases.passed} passed, ${cases.failed} failed, ${cases.skipped} skipped (backends not available here)`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && vitest.status === 0 && conf.status === 0 ? 0 : 1);
