import { describe, expect, it } from 'vitest';
import { defaultCaseDirs, loadCases, runConformance, summarize } from '@rlhf/conformance';
import { onEveryIsa, requireNative } from './helpers.js';

requireNative();

describe('the conformance cases on the cpu backend', () => {
  it('all pass on every ISA path', () => {
    const cases = loadCases(defaultCaseDirs);
    onEveryIsa((isa) => {
      const results = runConformance(cases, ['cpu']);
      const failures = results.flatMap((r) => (r.outcome.status === 'fail' ? [`${isa} ${r.case}: ${r.outcome.problems.join('; ')}`] : []));
      expect(failures).toEqual([]);
      expect(summarize(results).skipped).toBe(0);
    });
  });
});
