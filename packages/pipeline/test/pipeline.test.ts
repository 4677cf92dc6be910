import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { flow, pipe } from 'fp-ts/lib/function.js';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { RlhfError, paramError } from '@rlhf/tensor';
import { asyncStage, stage, start, type AddsOf, type Merge, type NeedsOf, type Stage } from '@rlhf/pipeline';

// A toy three-stage step: prompts → responses → scores → advantages.
const rollout = stage('rollout', (r: { prompts: string[] }) => E.right({ responses: r.prompts.map((p) => `${p}!`) }));
const score = asyncStage('score', (r: { responses: string[] }) => TE.right({ scores: r.responses.map((s) => s.length) }));
const advantages = stage('advantages', (r: { scores: number[] }) => {
  const mean = r.scores.reduce((a, b) => a + b, 0) / r.scores.length;
  return E.right({ advantages: r.scores.map((s) => s - mean) });
});

describe('pipeline typing', () => {
  it('a stage declares what it reads and what it adds', () => {
    expectTypeOf(score).toEqualTypeOf<Stage<{ responses: string[] }, { scores: number[] }>>();
    expectTypeOf<NeedsOf<typeof score>>().toEqualTypeOf<{ responses: string[] }>();
    expectTypeOf<AddsOf<typeof score>>().toEqualTypeOf<{ scores: number[] }>();
  });

  it('composition with pipe keeps every field the record holds and adds each stage output', () => {
    const step = pipe(start({ prompts: ['a'], seed: 3 }), TE.chain(rollout), TE.chain(score), TE.chain(advantages));
    expectTypeOf(step).toEqualTypeOf<
      TE.TaskEither<
        RlhfError,
        Merge<Merge<Merge<{ prompts: string[]; seed: number }, { responses: string[] }>, { scores: number[] }>, { advantages: number[] }>
      >
    >();
  });

  it('composition with flow builds a reusable step', () => {
    const step = flow(rollout, TE.chain(score));
    expectTypeOf(step({ prompts: ['a'], id: 1 })).toEqualTypeOf<
      TE.TaskEither<RlhfError, Merge<Merge<{ prompts: string[]; id: number }, { responses: string[] }>, { scores: number[] }>>
    >();
  });

  it('a stage wired before the one producing its input does not compile', () => {
    const misordered = () =>
      // @ts-expect-error `score` needs `responses`, which only `rollout` adds
      pipe(start({ prompts: ['a'] }), TE.chain(score), TE.chain(rollout));
    expectTypeOf(misordered).toBeFunction();
    // @ts-expect-error a record missing what the first stage reads
    const missing = () => flow(rollout, TE.chain(score))({ responses: [] });
    expectTypeOf(missing).toBeFunction();
  });

  it('a stage cannot be typed as needing less than it reads, and a field it overwrites takes its new type', () => {
    // @ts-expect-error `score` reads `responses`
    const loose: Stage<object, { scores: number[] }> = score;
    expectTypeOf(loose).not.toBeAny();
    const parse = stage('parse', (r: { n: string }) => E.right({ n: Number(r.n) }));
    const needsText = stage('needsText', (r: { n: string }) => E.right({ length: r.n.length }));
    expectTypeOf(pipe(start({ n: '12' }), TE.chain(parse))).toEqualTypeOf<TE.TaskEither<RlhfError, Merge<{ n: string }, { n: number }>>>();
    // @ts-expect-error after `parse`, n is a number
    const stale = () => pipe(start({ n: '12' }), TE.chain(parse), TE.chain(needsText));
    expectTypeOf(stale).toBeFunction();
    // A union record keeps its members through a stage: narrowing on a tag still works.
    type Job = { kind: 'a'; prompts: string[]; x: number } | { kind: 'b'; prompts: string[]; y: string };
    const tagged = (j: Job) => pipe(start(j), TE.chain(rollout), TE.map((r) => (r.kind === 'a' ? r.x : r.y.length)));
    expectTypeOf(tagged).returns.toEqualTypeOf<TE.TaskEither<RlhfError, number>>();
  });
});

describe('pipeline behaviour', () => {
  it('a stage runs when its task runs, once per run, as an async stage does', async () => {
    let runs = 0;
    const counted = stage('counted', (r: { n: number }) => E.right({ runs: ++runs + r.n * 0 }));
    const task = pipe(start({ n: 1 }), TE.chain(counted));
    const applied = counted({ n: 1 });
    expect(runs).toBe(0);
    expect(await applied()).toEqual(E.right({ n: 1, runs: 1 }));
    expect(await task()).toEqual(E.right({ n: 1, runs: 2 }));
    expect(await task()).toEqual(E.right({ n: 1, runs: 3 }));
  });

  it('runs the stages in order and keeps the input fields', async () => {
    const out = await pipe(start({ prompts: ['ab', 'abcd'], tag: 'x' }), TE.chain(rollout), TE.chain(score), TE.chain(advantages))();
    expect(out).toEqual(
      E.right({ prompts: ['ab', 'abcd'], tag: 'x', responses: ['ab!', 'abcd!'], scores: [3, 5], advantages: [-1, 1] }),
    );
  });

  it('an error stops the pipeline, keeps its kind and names the stage', async () => {
    let reached = false;
    const failing = stage('score', (_: { responses: string[] }) => E.left(paramError('temperature must be > 0')));
    const after = stage('advantages', (r: { scores: number[] }) => {
      reached = true;
      return E.right({ n: r.scores.length });
    });
    const out = await pipe(start({ prompts: ['a'] }), TE.chain(rollout), TE.chain(failing), TE.chain(after))();
    expect(reached).toBe(false);
    expect(E.isLeft(out) && out.left).toBeInstanceOf(RlhfError);
    expect(E.isLeft(out) && out.left.kind).toBe('param');
    expect(E.isLeft(out) && out.left.message).toBe('[param] score: temperature must be > 0');
  });

  it('an exception thrown inside a stage, sync or async, becomes an RlhfError value', async () => {
    const throwing = stage('model', (_: object) => {
      throw new Error('boom');
    });
    const rejecting = asyncStage('server', (_: object) => () => Promise.reject(new Error('down')));
    const a = await throwing({})();
    const b = await rejecting({})();
    expect(E.isLeft(a) && a.left.message).toContain('model: boom');
    expect(E.isLeft(b) && b.left.message).toContain('server: down');
    expect(E.isLeft(b) && b.left).toBeInstanceOf(RlhfError);
  });

  it('stages carry their names', () => {
    expect([rollout.stageName, score.stageName, advantages.stageName]).toEqual(['rollout', 'score', 'advantages']);
  });
});
