import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCases, runConformance, summarize } from '@rlhf/conformance';
import { onEveryIsa, requireNative } from './helpers.js';

requireNative();
// The contract's visible cases and those of the second float64 reference (conformance/reference).
const caseDirs = ['../../conformance/cases/', '../../conformance/generated/'].map((d) => fileURLToPath(new URL(d, import.meta.url)));

describe('the conformance cases on the cpu backend', () => {
  it('all pass on every ISA path', () => {
    const cases = loadCases(caseDirs);
    onEveryIsa((isa) => {
      const results = runConformance(cases, ['cpu']);
      const failures = results.flatMap((r) => (r.outcome.status === 'fail' ? [`${isa} ${r.case}: ${r.outcome.problems.join('; ')}`] : []));
      expect(failures).toEqual([]);
      expect(summarize(results).skipped).toBe(0);
    });
  });
});
