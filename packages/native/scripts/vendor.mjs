// pack time: a packed @rlhf/native must build its addon where the repository's native/ is not, so
// `prepack` copies the sources the addon needs (CMake project, headers, kernels, binding; not the tests)
// into ./native, and `postpack` (--clean) removes the copy again. scripts/build.mjs builds from
// ../../native when it is there (this repository) and from ./native otherwise.
import { cpSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoNative = resolve(packageDir, '../../native');
const vendored = join(packageDir, 'native');

rmSync(vendored, { recursive: true, force: true });
if (!process.argv.includes('--clean'))
  for (const part of ['CMakeLists.txt', 'cmake', 'include', 'src', 'binding'])
    cpSync(join(repoNative, part), join(vendored, part), { recursive: true });
