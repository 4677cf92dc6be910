#!/usr/bin/env node
import { availableBackends, backendStatus, isBackendName, type BackendName } from '@rlhf/kernels';
import { defaultCaseDirs, loadCases } from './caseFile.js';
import { loadNativeBackends } from './loadNative.js';
import { runConformance, summarize } from './runner.js';

const USAGE = 'usage: pnpm conformance [--backend js|cpu|cuda|all] [--verbose] [DIR|FILE …]';

const parseArgs = (argv: readonly string[]) => {
  let backend = 'all';
  let verbose = false;
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend' || a === '-b') backend = argv[++i] ?? '';
    else if (a.startsWith('--backend=')) backend = a.slice('--backend='.length);
    else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a === '--help' || a === '-h') return { help: true as const };
    else if (a.startsWith('-')) return { error: `unknown option ${a}` };
    else paths.push(a);
  }
  const backends = backend === 'all' ? (['js', 'cpu', 'cuda'] as BackendName[]) : backend.split(',');
  const bad = backends.find((b) => !isBackendName(b));
  if (bad !== undefined) return { error: `unknown backend '${bad}'` };
  return { backends: backends as BackendName[], verbose, paths: paths.length ? paths : defaultCaseDirs };
};

const main = async (): Promise<number> => {
  const args = parseArgs(process.argv.slice(2));
  if ('help' in args) return console.log(USAGE), 0;
  if ('error' in args) return console.error(`${args.error}\n${USAGE}`), 2;
  await loadNativeBackends();
  const cases = loadCases(args.paths);
  const results = runConformance(cases, args.backends);
  for (const s of backendStatus().filter((s) => args.backends.includes(s.name) && !s.available))
    console.log(`skip [${s.name}] backend unavailable: ${s.reason}`);
  for (const r of results) {
    if (r.outcome.status === 'fail') for (const p of r.outcome.problems) console.log(`FAIL [${r.backend}] ${r.case}: ${p}`);
    else if (args.verbose && r.outcome.status === 'pass') console.log(`ok   [${r.backend}] ${r.case}`);
  }
  const { passed, failed, skipped } = summarize(results);
  console.log(`backends run: ${args.backends.filter((b) => availableBackends().includes(b)).join(', ') || 'none'}; ${cases.length} cases`);
  console.log(`conformance: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  return failed > 0 || cases.length === 0 ? 1 : 0;
};

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
