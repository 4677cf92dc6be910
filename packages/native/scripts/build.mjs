// Builds the native addon with cmake-js (offline: Node-API headers come from the node-api-headers
// package because package.json declares "binary": {"napi_versions": [8]}) from ../../native into
// ../../native/build in this repository, or, in a packed @rlhf/native, from its copy ./native into ./build
// (src/addon.ts looks where this puts it).
// On any failure (no compiler, no cmake, a compile error) it records why in <build>/UNAVAILABLE
// and exits 0, so that installing the workspace still succeeds and the `js` backend is used;
// `nativeStatus()` then reports the reason. `--strict` (the build:native script) exits 1 instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const strict = process.argv.includes('--strict');
const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const inRepo = existsSync(resolve(packageDir, '../../native/include/rlhf/kernels.h'));
const sourceDir = inRepo ? resolve(packageDir, '../../native') : join(packageDir, 'native');
const buildDir = inRepo ? join(sourceDir, 'build') : join(packageDir, 'build');
const reasonFile = join(buildDir, 'UNAVAILABLE');

const fail = (reason) => {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(reasonFile, `${reason}\n`);
  // An addon left from an earlier build would not match these sources: the reason is the truth now.
  rmSync(join(buildDir, 'Release', 'rlhf_native.node'), { force: true });
  console.warn(`@rlhf/native: the native kernels were not built (${reason}); the js backend will be used.`);
  process.exit(strict ? 1 : 0);
};

const have = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
if (!have('cmake', ['--version'])) fail('cmake was not found at install');
if (!have(process.env.CXX ?? 'c++', ['--version']) && !have('g++', ['--version']) && !have('clang++', ['--version']))
  fail('no C++ compiler (c++, g++ or clang++) was found at install');

let cmakeJs;
try {
  cmakeJs = createRequire(join(packageDir, 'package.json')).resolve('cmake-js/bin/cmake-js');
} catch {
  fail('the cmake-js package is not installed');
}

rmSync(reasonFile, { force: true });

// Runs configure then build (configure every time, cheap once cached: a previous failed or
// differently-optioned configure must not leave a stale tree). Returns null or why it failed.
const build = (defines) => {
  const common = ['--directory', packageDir, '--out', buildDir, ...[`RLHF_NATIVE_SOURCE=${sourceDir}`, ...defines].map((d) => `--CD${d}`)];
  if (process.env.RLHF_DEBUG === '1') common.push('--debug');
  for (const step of [['configure'], ['build', '--parallel', '2']]) {
    const run = spawnSync(process.execPath, [cmakeJs, ...step, ...common], { cwd: packageDir, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (run.status === 0) continue;
    const log = `${run.stdout ?? ''}${run.stderr ?? ''}`;
    process.stderr.write(log.slice(-4000));
    const tail = log.split('\n').filter((l) => /error|not found|No CMAKE/i.test(l)).slice(-3).join(' | ');
    return `cmake-js ${step[0]} failed${run.error ? `: ${run.error.message}` : ''}${tail ? `: ${tail}` : ''}`;
  }
  return null;
};

const noCuda = process.env.RLHF_NO_CUDA === '1';
// Every configure sets RLHF_CUDA_OFF_REASON ("none": cmake-js drops empty values): a reason cached by an
// earlier failed CUDA build must not outlive it, or nativeStatus() reports that failure for a build
// that never tried CUDA.
let failure = build(noCuda ? ['RLHF_CUDA=OFF', 'RLHF_CUDA_OFF_REASON=none'] : ['RLHF_CUDA=ON', 'RLHF_CUDA_OFF_REASON=none']);
if (failure && !noCuda) {
  // The CPU kernels must not depend on the CUDA build: retry without it and keep the reason.
  console.warn(`@rlhf/native: the build with CUDA failed (${failure}); building the CPU kernels without CUDA.`);
  const reason = `built without CUDA: the CUDA build failed at install (${failure})`.replace(/[";\\]/g, "'").slice(0, 300);
  failure = build(['RLHF_CUDA=OFF', `RLHF_CUDA_OFF_REASON=${reason}`]);
}
if (failure) fail(failure);
console.log('@rlhf/native: built the native kernels');
