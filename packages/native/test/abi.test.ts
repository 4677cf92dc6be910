import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NATIVE_ABI_VERSION, loadAddon, nativeStatus } from '@rlhf/native';

// The C ABI's promise (kernels.h): RLHF_ABI_VERSION, the SONAME of librlhf, is raised whenever a
// function's signature or an enum's values change. native/abi/<N>.txt records ABI N; every line of it
// must still stand in the headers, so a change to an existing declaration fails here until the number
// is raised and the new ABI recorded. Declarations may be added within an ABI. The header's numbers
// must also be the package's release and the ABI the bindings expect, and a stale addon is refused.
const include = new URL('../../../native/include/rlhf/', import.meta.url);
const headers = ['kernels.h', 'kernels_cuda.h'].map((h) => readFileSync(new URL(h, include), 'utf8')).join('\n');

/** A parameter without its name ("const float* logits" -> "const float*"); "void" and "..." stay. */
const typeOnly = (param: string) => (/^(void|\.\.\.)$/.test(param) ? param : param.replace(/\s*\b\w+$/, '').trim());

/** Every exported function (parameter names dropped) and enum definition, one normalised line each. */
const abiDeclarations = (source: string): string[] =>
  (
    source
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '')
      .replace(/^\s*#.*$/gm, '')
      .match(/\bRLHF_API\b[^;]*;|\btypedef enum\b[^;]*;/g) ?? []
  )
    .map((d) => d.replace(/\s+/g, ' ').replace(/\s*([(),{}=])\s*/g, '$1').replace(/\s*\*\s*/g, '* ').replace(/\* ([,)*])/g, '*$1'))
    .map((d) => d.replace(/^(RLHF_API[^(]*)\((.*)\);$/, (_, head: string, params: string) => `${head}(${params.split(',').map(typeOnly).join(',')});`));

const recordFile = (abi: number) => new URL(`../../../native/abi/${abi}.txt`, import.meta.url);
const record = 'RLHF_RECORD_ABI=1 npx vitest run packages/native/test/abi.test.ts';

describe('the C ABI', () => {
  const current = abiDeclarations(headers);

  it('finds the declarations (every kernel, the runtime, the enums) and drops parameter names only', () => {
    expect(current.length).toBeGreaterThan(40);
    expect(current).toContain('RLHF_API int rlhf_abi_version(void);');
    expect(current).toContain('RLHF_API rlhf_status rlhf_pairwise_f32(const float*,const float*,const float*,int64_t,double,double,float*,float*,double*,double*);');
    expect(current).toContain('RLHF_API void* rlhf_cuda_stream_raw(void*);');
    expect(current.some((d) => d.startsWith('typedef enum rlhf_status{RLHF_OK=0,'))).toBe(true);
  });

  it(`keeps every declaration recorded for ABI ${NATIVE_ABI_VERSION} (native/abi/${NATIVE_ABI_VERSION}.txt)`, () => {
    const file = recordFile(NATIVE_ABI_VERSION);
    if (process.env['RLHF_RECORD_ABI'] === '1') writeFileSync(file, `${current.join('\n')}\n`);
    expect(existsSync(file), `no record of ABI ${NATIVE_ABI_VERSION}: write it with ${record}`).toBe(true);
    const recorded = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const changed = recorded.filter((d) => !current.includes(d));
    expect(
      changed,
      `these declarations of ABI ${NATIVE_ABI_VERSION} changed or went away: raise RLHF_ABI_VERSION in kernels.h and ` +
        `NATIVE_ABI_VERSION in packages/native/src/addon.ts, then record the new ABI with ${record}`,
    ).toEqual([]);
  });
});

describe('versions', () => {
  const define = (name: string) => Number(new RegExp(`^#define RLHF_${name} (\\d+)$`, 'm').exec(headers)?.[1]);

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
