import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadCases, runConformance, summarize } from '@rlhf/conformance';
import { onEveryIsa, requireNative } from './helpers.js';

requireNative();
const casesDir = fileURLToPath(new URL('../../conformance/cases/', import.meta.url));

describe('the visible conformance cases on the cpu backend', () => {
  it('all pass on every ISA path', () => {
    const cases = loadCases([casesDir]);
    onEveryIsa((isa) => {
      const results = runConformance(cases, ['cpu']);
      const failures = results.flatMap((r) => (r.outcome.status === 'fail' ? [`${isa} ${r.case}: ${r.outcome.problems.join('; ')}`] : []));
      expect(failures).toEqual([]);
      expect(summarize(results).skipped).toBe(0);
    });
  });
});
