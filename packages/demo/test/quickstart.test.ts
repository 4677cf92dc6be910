import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { quickstart } from '../src/quickstart.js';

describe('the README examples (quickstart)', () => {
  const r = quickstart();
  it('every example returns a result, on the native cpu backend', () => {
    expect(r.backend).toBe('cpu');
    for (const [name, v] of Object.entries(r)) if (typeof v !== 'string') expect(E.isRight(v), name).toBe(true);
  });
  it('computes what the SPEC says on the literal data', () => {
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    // ranking: pairs (2>1), (2>0), (1>0) of one prompt, the padded 5 never read
    const want = -(Math.log(sig(1)) + Math.log(sig(2)) + Math.log(sig(1))) / 3;
    expect(E.isRight(r.ranked) && r.ranked.right.loss).toBeCloseTo(want, 6);
    // the adaptive controller: e = clip(8/6 − 1, ±0.2) = 0.2, β = 0.2·(1 + 0.2·256/10000)
    expect(E.isRight(r.beta) && r.beta.right).toBeCloseTo(0.2 * (1 + (0.2 * 256) / 10000), 12);
    // the score lands on the last valid token: row 2 has mask [1, 1, 0]
    expect(E.isRight(r.shaped) && r.shaped.right.rewards.data[5]).toBe(0);
    expect(E.isRight(r.shaped) && r.shaped.right.rewards.data[4]).toBeCloseTo(-1 - 0.05 * (-0.3 + 0.2), 6);
  });
});
