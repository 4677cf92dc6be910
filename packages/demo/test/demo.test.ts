import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { unsafeTensor } from '@rlhf/tensor';
import { rng } from '@rlhf/trainers';
import { annotate, hiddenUtility, lineChartSvg, runJob, SIZES, type Report } from '@rlhf/demo';

const run = async (seed: number): Promise<{ report: Report; dir: string }> => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-'));
  const out = await runJob({ seed, outDir: dir, size: SIZES.quick })();
  if (E.isLeft(out)) throw new Error(out.left.message);
  return { report: out.right, dir };
};

const withoutTime = (r: Report) => ({ ...r, wallSeconds: 0 });

describe('the main job (smoke size)', () => {
  it('does nothing until its task runs', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'demo-lazy-')), 'run');
    const task = runJob({ seed: 1, outDir: dir, size: SIZES.quick });
    expect(typeof task).toBe('function');
    expect(existsSync(dir)).toBe(false);
  });

  it('writes report.json, metrics.jsonl and plot.svg with the promised fields, deterministically under a seed', async () => {
    const a = await run(3);
    const saved = JSON.parse(readFileSync(join(a.dir, 'report.json'), 'utf8')) as Report;
    expect(saved.rewardModel.heldOutAccuracy).toBeGreaterThanOrEqual(0);
    for (const name of ['kl', 'noKl'] as const)
      for (const key of ['utilityBefore', 'utilityAfter', 'rmScoreAfter', 'klAfter'] as const)
        expect(Number.isFinite(saved[name][key]), `${name}.${key}`).toBe(true);
    expect(saved.noKl.controller).toEqual({ kind: 'fixed', beta: 0 });
    expect(saved.kl.controller.kind).toBe('adaptive');
    expect(saved.findings).toHaveLength(2);

    const lines = readFileSync(join(a.dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const phases = new Set(lines.map((l) => l.phase));
    expect([...phases].sort()).toEqual(['ppo', 'pretrain', 'rewardModel']);
    const ppo = lines.filter((l) => l.phase === 'ppo');
    expect(ppo.filter((l) => l.run === 'kl')).toHaveLength(SIZES.quick.ppoSteps);
    expect(ppo.filter((l) => l.run === 'noKl').every((l) => l.beta === 0)).toBe(true);
    for (const key of ['policyLoss', 'valueLoss', 'clipFrac', 'approxKl', 'kl', 'beta', 'entropy', 'meanScore', 'explainedVariance', 'utility'])
      expect(typeof ppo[0][key], key).toBe('number');

    const svg = readFileSync(join(a.dir, 'plot.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('hidden utility');
    expect(svg.match(/<path /g)!.length).toBe(7); // 2 runs × 3 panels + the KL target

    const b = await run(3);
    expect(withoutTime(b.report)).toEqual(withoutTime(a.report));
    const c = await run(4);
    expect(c.report.kl.utilityAfter).not.toBe(a.report.kl.utilityAfter);
  });
});

describe('the simulated annotator', () => {
  it('scores +1 per good token and −1 per immediate repeat inside the response', () => {
    const tokens = unsafeTensor('int32', [2, 6], Int32Array.of(3, 3, 3, 7, 7, 1, 0, 1, 2, 4, 5, 6));
    const mask = unsafeTensor('uint8', [2, 6], Uint8Array.of(0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1));
    // Row 0: response 3 3 7 7 1 → good 4, repeats 2 (the prompt's 3 does not count).
    expect(Array.from(hiddenUtility(tokens, mask))).toEqual([2, 0]);
  });

  it('without noise ranks by utility, ties equal utilities, and with noise stays mostly consistent', () => {
    const K = 4;
    const r = rng(1);
    const n = 200;
    const tokens = unsafeTensor('int32', [n * K, 5], Int32Array.from({ length: n * K * 5 }, () => r.int(16)));
    const mask = unsafeTensor('uint8', [n * K, 5], new Uint8Array(n * K * 5).fill(1));
    const u = hiddenUtility(tokens, mask);
    const exact = annotate(tokens, mask, K, rng(2), 0);
    expect(exact.ranks.shape).toEqual([n, K]);
    let agree = 0;
    let total = 0;
    for (let b = 0; b < n; b++)
      for (let i = 0; i < K; i++)
        for (let j = 0; j < K; j++) {
          const [ui, uj] = [u[b * K + i]!, u[b * K + j]!];
          const [ri, rj] = [exact.ranks.data[b * K + i]!, exact.ranks.data[b * K + j]!];
          expect(Math.sign(rj - ri)).toBe(Math.sign(ui - uj));
          if (ui > uj) {
            total++;
            const noisy = annotate(unsafeTensor('int32', [K, 5], tokens.data.subarray(b * K * 5, (b + 1) * K * 5)), unsafeTensor('uint8', [K, 5], mask.data.subarray(b * K * 5, (b + 1) * K * 5)), K, rng(b * 31 + i * 7 + j), 0.5);
            if (noisy.ranks.data[i]! < noisy.ranks.data[j]!) agree++;
          }
        }
    expect(agree / total).toBeGreaterThan(0.7);
  });

  it('the plot writer draws one path per series', () => {
    const svg = lineChartSvg([{ title: 'a < b', series: [{ label: 'x', color: 'red', points: [[1, 2], [2, 3]] }] }], 'step');
    expect(svg).toContain('a &lt; b');
    expect(svg.match(/<path /g)).toHaveLength(1);
  });

  it('the plot writer ends on a range of a few ulps (its ticks once looped forever there)', () => {
    const svg = lineChartSvg([{ title: 't', series: [{ label: 'x', color: 'red', points: [[0, 1], [1, 1 + 2 ** -52]] }] }], 'step');
    expect(svg).toContain('<path ');
  });
});
