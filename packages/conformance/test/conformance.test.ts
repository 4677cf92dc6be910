import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compareOutput,
  generatedCasesDir,
  loadCases,
  runCase,
  runConformance,
  sharedCasesDir,
  summarize,
} from '@rlhf/conformance';


describe.each([
  ['the visible conformance cases', sharedCasesDir, 85],
  ['the cases of the second reference (reference/generate.py)', generatedCasesDir, 256],
])('%s', (_, dir, count) => {
  it('all pass on the js backend', () => {
    const results = runConformance(loadCases([dir]), ['js']);
    const failures = results.flatMap((r) => (r.outcome.status === 'fail' ? [`${r.case}: ${r.outcome.problems.join('; ')}`] : []));
    expect(failures).toEqual([]);
    expect(summarize(results).passed).toBeGreaterThanOrEqual(count);
  });
});

describe('the runner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cases-'));
  const write = (name: string, body: object) => writeFileSync(join(dir, `${name}.json`), JSON.stringify({ name, ...body }));
  const logits = { dtype: 'float32', shape: [1, 2], data: [0, 'NaN'] };
  write('wrong-expectation', {
    op: 'logsoftmax',
    inputs: { logits: { dtype: 'float32', shape: [1, 2], data: [0, 0] } },
    expected: { logsoftmax: { dtype: 'float64', shape: [1, 2], data: [-0.69, -0.6931471805599453] } },
    tolerance: { rtol: 1e-4, atol: 1e-5 },
  });
  write('nan-matches-nan', {
    op: 'logsoftmax',
    inputs: { logits },
    expected: { logsoftmax: { dtype: 'float64', shape: [1, 2], data: ['NaN', 'NaN'] } },
    tolerance: { rtol: 1e-4, atol: 1e-5 },
  });
  write('error-kind', { op: 'logsoftmax', params: { temperature: 0 }, inputs: { logits }, error: 'param', tolerance: { rtol: 0, atol: 0 } });
  write('wrong-error-kind', { op: 'logsoftmax', params: { temperature: 0 }, inputs: { logits }, error: 'shape', tolerance: { rtol: 0, atol: 0 } });
  write('unknown-op', { op: 'softmax.v2', inputs: {}, expected: {}, tolerance: { rtol: 0, atol: 0 } });
  write('missing-output', {
    op: 'logsoftmax',
    inputs: { logits },
    expected: { probabilities: { dtype: 'float64', shape: [1, 2], data: [0.5, 0.5] } },
    tolerance: { rtol: 0, atol: 0 },
  });

  // Dtypes the SPEC does not allow reach the primitive, which rejects them (a shape error), and an
  // optional input given as null is left out.
  write('int64-labels', {
    op: 'logprobs',
    inputs: { logits, labels: { dtype: 'int64', shape: [1], data: [0] } },
    error: 'shape',
    tolerance: { rtol: 0, atol: 0 },
  });
  write('bool-mask', {
    op: 'whiten',
    inputs: { x: { dtype: 'float32', shape: [2], data: [1, 2] }, mask: { dtype: 'bool', shape: [2], data: [1, 1] } },
    error: 'shape',
    tolerance: { rtol: 0, atol: 0 },
  });
  write('float16-logits', { op: 'logsoftmax', inputs: { logits: { dtype: 'float16', shape: [1, 2], data: [0, 0] } }, error: 'shape', tolerance: { rtol: 0, atol: 0 } });
  write('null-margin', {
    op: 'preference.pairwise',
    inputs: { chosen: { dtype: 'float32', shape: [1], data: [1] }, rejected: { dtype: 'float32', shape: [1], data: [1] }, margin: null },
    expected: { loss: { dtype: 'float64', shape: [], data: [0.6931471805599453] } },
    tolerance: { rtol: 1e-6, atol: 0 },
  });

  it('fails a wrong value, a wrong error kind, an unknown op and a missing output; passes NaN against NaN', () => {
    const byName = Object.fromEntries(loadCases([dir]).map((c) => [c.name, runCase(c, 'js').status]));
    expect(byName).toEqual({
      'bool-mask': 'pass',
      'error-kind': 'pass',
      'float16-logits': 'pass',
      'int64-labels': 'pass',
      'null-margin': 'pass',
      'missing-output': 'fail',
      'nan-matches-nan': 'pass',
      'unknown-op': 'fail',
      'wrong-error-kind': 'fail',
      'wrong-expectation': 'fail',
    });
  });

  it('counts an unavailable backend as skipped, never as passed', () => {
    const cases = loadCases([dir]);
    const s = summarize(runConformance(cases, ['js', 'cuda']));
    expect(s.skipped).toBe(cases.length);
    expect(s.passed + s.failed).toBe(cases.length);
  });

  it('names the worst element and the tolerance', () => {
    const m = compareOutput('x', { dtype: 'float64', shape: [2], data: Float64Array.from([1, 2.5]) }, { dtype: 'float64', shape: [2], data: Float64Array.from([1, 2]) }, { rtol: 1e-4, atol: 1e-5 });
    expect(m?.message).toMatch(/worst error 5\.000e-1 at \[1\]: got 2\.5, expected 2; tolerance rtol 0\.0001 atol 0\.00001/);
    expect(compareOutput('x', 3, { dtype: 'float64', shape: [], data: Float64Array.from([Infinity]) }, { rtol: 0, atol: 0 })).toBeDefined();
    expect(compareOutput('x', -Infinity, { dtype: 'float64', shape: [], data: Float64Array.from([-Infinity]) }, { rtol: 0, atol: 0 })).toBeUndefined();
  });
});
