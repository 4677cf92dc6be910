import { readFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { backendName, results as r } from '../src/quickstart.js';

/** The lines of `text` strictly between the line containing `begin` and the next one containing `end`. */
const between = (text: string, begin: string, end: string): string => {
  const lines = text.split('\n');
  const from = lines.findIndex((l) => l.includes(begin));
  const to = lines.findIndex((l, i) => i > from && l.includes(end));
  return from < 0 || to < 0 ? '' : lines.slice(from + 1, to).join('\n');
};

describe('the README examples (quickstart)', () => {
  it('are what README.md shows, line for line', () => {
    // Line endings as git may check them out (CRLF on Windows) are not a difference.
    const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8').replace(/\r\n/g, '\n');
    const source = read('../src/quickstart.ts');
    const readme = read('../../../README.md');
    const example = between(source, '// README example: begin', '// README example: end');
    expect(example.length).toBeGreaterThan(1000);
    const block = readme.slice(readme.indexOf('```ts\n', readme.indexOf('## Examples')) + 6);
    expect(block.slice(0, block.indexOf('\n```\n'))).toBe(example);
  });
  it('every example returns a result, on the native cpu backend', () => {
    expect(backendName).toBe('cpu');
    for (const [name, v] of Object.entries(r)) expect(E.isRight(v), name).toBe(true);
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
    // exact KL of row 2: p = softmax([-1, 0, 3]) against the uniform q
    const z = [-1, 0, 3].map(Math.exp);
    const p = z.map((v) => v / (z[0]! + z[1]! + z[2]!));
    const klRow = p.reduce((s, pv) => s + pv * Math.log(pv * 3), 0);
    expect(E.isRight(r.exactKl) && r.exactKl.right.kl.data[1]).toBeCloseTo(klRow, 6);
    // the backward from saved statistics and the recomputing one agree; the async forward is the sync one
    const g = (x: typeof r.grad) => (E.isRight(x) ? Array.from(x.right.gradLogits.data) : []);
    expect(g(r.gradFromStats)).toEqual(g(r.grad).map((v) => expect.closeTo(v, 6)));
    expect(E.isRight(r.lpAsync) && E.isRight(r.lp) && Array.from(r.lpAsync.right.logprobs.data)).toEqual(
      E.isRight(r.lp) ? Array.from(r.lp.right.logprobs.data) : null,
    );
  });
});
