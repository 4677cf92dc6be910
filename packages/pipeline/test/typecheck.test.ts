import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// vitest strips types without checking them, so `expectTypeOf` and `@ts-expect-error` in
// pipeline.test.ts mean something only once the compiler has checked that file. This test runs it.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const diagnosticsOf = (file: string): readonly ts.Diagnostic[] => {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: ['node'],
    baseUrl: root,
    paths: { '@rlhf/*': ['packages/*/src/index.ts'] },
  });
  return ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
};

const lineOf = (d: ts.Diagnostic): number => d.file!.getLineAndCharacterOfPosition(d.start!).line;

describe('the compiler checks pipeline typing', () => {
  it('the type-level tests in pipeline.test.ts hold (expectTypeOf and every @ts-expect-error)', () => {
    const messages = diagnosticsOf(here('./pipeline.test.ts')).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(messages).toEqual([]);
  });

  it('rejects exactly the misordered compositions of the fixture', () => {
    const file = here('./fixtures/misordered.ts');
    const lines = ts.sys.readFile(file)!.split('\n');
    const expected = lines.flatMap((l, i) => (l.includes('// MISORDERED') ? [i] : []));
    const errors = diagnosticsOf(file);
    expect(expected.length).toBe(2);
    expect([...new Set(errors.map(lineOf))]).toEqual(expected);
    expect(errors.every((d) => d.code === 2345)).toBe(true);
    expect(ts.flattenDiagnosticMessageText(errors[0]!.messageText, '\n')).toContain("Property 'tokens' is missing");
  });
});
