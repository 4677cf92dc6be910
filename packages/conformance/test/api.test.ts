import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { backend, type Kernels } from '@rlhf/kernels';
import { adaptiveKlController, fixedKlController, klFull } from '@rlhf/kl';
import { dpo, pairwise, ranking } from '@rlhf/preference';
import { fromArray, tensor, type Tensor } from '@rlhf/tensor';
import { compareOutput, decodeTensor, loadCases, loadNativeBackends, OPS, sharedCasesDir, type Case, type Out } from '@rlhf/conformance';

// Every SPEC operation through its public function, on the visible cases: the API's promises that the
// cases themselves cannot check (README "Examples", CHANGELOG).
await loadNativeBackends();
const backends = (['js', 'cpu'] as const).flatMap((name) => {
  const k = backend(name);
  return E.isRight(k) ? [k.right] : [];
});
const cases = loadCases([sharedCasesDir]);
const withResults = cases.filter((c) => c.expected !== undefined);
const inputsOf = (c: Case): Record<string, Tensor> =>
  Object.fromEntries(Object.entries(c.inputs).flatMap(([name, t]) => (t === null ? [] : [[name, decodeTensor(t)]])));
const kindOf = (r: E.Either<unknown, unknown>) => (E.isLeft(r) ? (r.left as { kind: string }).kind : 'result');
/** The error kind (or 'result') of `f()`, or 'threw …' where it threw instead. */
const kindOrThrew = (f: () => E.Either<unknown, unknown>): string => {
  try {
    return kindOf(f());
  } catch (e) {
    return `threw ${String(e)}`;
  }
};
/** A revoked Proxy: reading anything of it throws. */
const revoked = (): never => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy as never;
};
const problems = (c: Case, r: E.Either<unknown, object>): string[] =>
  E.isLeft(r)
    ? [`error: ${(r.left as Error).message}`]
    : Object.entries(c.expected!).flatMap(([name, t]) => {
        const m = compareOutput(name, (r.right as Record<string, unknown>)[name], decodeTensor(t), c.tolerance);
        return m ? [m.message] : [];
      });

/**
 * The in-place writes each op promises (an output exactly over one of its inputs, read element by element
 * before it is written): these must give the SPEC's results, not a shape error.
 */
const IN_PLACE: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  logsoftmax: [['logsoftmax', 'logits']],
  'kl.estimate': [['kl', 'logprobs'], ['kl', 'refLogprobs'], ['gradLogprobs', 'logprobs'], ['gradLogprobs', 'refLogprobs']],
  'kl.shapeRewards': [['rewards', 'logprobs'], ['rewards', 'refLogprobs'], ['nonScoreRewards', 'logprobs'], ['nonScoreRewards', 'refLogprobs']],
  'kl.adaptive': [['beta', 'observedKl']],
  gae: [['advantages', 'rewards'], ['returns', 'rewards']],
  whiten: [['y', 'x']],
  'ppo.policy': [['gradLogprobs', 'logprobs'], ['gradLogprobs', 'oldLogprobs'], ['gradLogprobs', 'advantages']],
  'ppo.value': [['gradValues', 'values'], ['gradValues', 'oldValues'], ['gradValues', 'returns']],
};

describe('the primitives outside the Kernels facade', () => {
  it('never throw where reading an argument throws', () => {
    const proxy = revoked();
    const getter = { get backend() { throw new Error('getter'); } };
    const one = fromArray('float32', [1]);
    const x = E.isRight(one) ? one.right : (undefined as never);
    const attempts: Record<string, () => E.Either<unknown, unknown>> = {
      'pairwise, revoked params': () => pairwise(proxy)({ chosen: x, rejected: x }),
      'ranking, a throwing backend getter': () => ranking(getter as never)(proxy),
      'dpo, revoked out': () => dpo({}, proxy)({ policyChosen: x, policyRejected: x, refChosen: x, refRejected: x }),
      'klFull, a throwing backend getter': () => klFull(getter as never)({ logitsP: x, logitsQ: x }),
      'fixedKlController, revoked': () => fixedKlController(proxy),
      'adaptiveKlController, revoked': () => adaptiveKlController(proxy),
      'update, revoked nSteps': () => E.chain((c: { update: (a: number, b: unknown) => E.Either<unknown, unknown> }) => c.update(1, proxy))(fixedKlController(0.1)),
      'fromArray, revoked values': () => fromArray('float32', proxy),
      'tensor, revoked data': () => tensor(proxy),
      'backend, a symbol': () => backend(Symbol('x') as never),
    };
    for (const [what, f] of Object.entries(attempts)) expect(kindOrThrew(f), what).toMatch(/^(shape|param)$/);
  });
});

describe.each(backends.map((k) => [k.name, k] as [string, Kernels]))('every operation on %s', (_, k) => {
  it('returns a typed error, never throws, where reading an argument throws', () => {
    const proxy = revoked();
    const throwing = Object.create(Object.defineProperty({}, 'beta', { get: () => { throw new Error('getter'); } }));
    for (const c of withResults) {
      expect(kindOrThrew(() => OPS[c.op]!(k, c.params, proxy)), `${c.name}: revoked inputs`).toBe('shape');
      expect(kindOrThrew(() => OPS[c.op]!(k, c.params, inputsOf(c), proxy)), `${c.name}: revoked out`).toBe('shape');
      // Where the op's runner copies the parameters (the backend ones), the getter never reaches the op.
      expect(kindOrThrew(() => OPS[c.op]!(k, throwing, inputsOf(c))), `${c.name}: a throwing parameter`).not.toMatch(/^threw/);
    }
  });

  it('writes outputs given over an input only where the result stays right, and never two over one buffer', () => {
    for (const c of withResults) {
      const baseline = OPS[c.op]!(k, c.params, inputsOf(c));
      expect(problems(c, baseline), c.name).toEqual([]);
      const arrays = Object.entries(E.isRight(baseline) ? baseline.right : {}).flatMap(([name, t]) =>
        t && ArrayBuffer.isView((t as Tensor).data) && name in c.expected! ? [[name, (t as Tensor).data] as const] : [],
      );
      for (const [output, data] of arrays) {
        // Over each input of the same dtype and length: a shape error, or results that are still the SPEC's.
        for (const input of Object.keys(inputsOf(c))) {
          const inputs = inputsOf(c);
          const target = inputs[input]!.data;
          if (target.constructor !== data.constructor || target.length !== data.length) continue;
          const r = OPS[c.op]!(k, c.params, inputs, { [output]: target } as Out);
          const promised = IN_PLACE[c.op]?.some(([o, i]) => o === output && i === input) ?? false;
          if (promised || kindOf(r) !== 'shape') expect(problems(c, r), `${c.name}: out.${output} over ${input}`).toEqual([]);
        }
        // Two outputs over one buffer can never both be right.
        for (const [other, otherData] of arrays) {
          if (other === output || otherData.constructor !== data.constructor || otherData.length !== data.length) continue;
          const shared = new (data.constructor as Float32ArrayConstructor)(data.length);
          const r = OPS[c.op]!(k, c.params, inputsOf(c), { [output]: shared, [other]: shared } as Out);
          expect(kindOf(r), `${c.name}: out.${output} and out.${other} in one buffer`).toBe('shape');
        }
      }
    }
  });
});
