import * as E from 'fp-ts/lib/Either.js';
import { describe, expect, it } from 'vitest';
import { backend, type Kernels } from '@rlhf/kernels';
import type { Tensor } from '@rlhf/tensor';
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
const problems = (c: Case, r: E.Either<unknown, object>): string[] =>
  E.isLeft(r)
    ? [`error: ${(r.left as Error).message}`]
    : Object.entries(c.expected!).flatMap(([name, t]) => {
        const m = compareOutput(name, (r.right as Record<string, unknown>)[name], decodeTensor(t), c.tolerance);
        return m ? [m.message] : [];
      });

describe.each(backends.map((k) => [k.name, k] as [string, Kernels]))('every operation on %s', (_, k) => {
  it('returns a typed error, never throws, where reading an argument throws', () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const throwing = Object.create(Object.defineProperty({}, 'beta', { get: () => { throw new Error('getter'); } }));
    for (const c of withResults) {
      const run = (f: () => E.Either<unknown, object>) => {
        try {
          return kindOf(f());
        } catch (e) {
          return `threw ${String(e)}`;
        }
      };
      expect(run(() => OPS[c.op]!(k, c.params, proxy as never)), `${c.name}: revoked inputs`).toBe('shape');
      expect(run(() => OPS[c.op]!(k, c.params, inputsOf(c), proxy as never)), `${c.name}: revoked out`).toBe('shape');
      // Where the op's runner copies the parameters (the backend ones), the getter never reaches the op.
      expect(run(() => OPS[c.op]!(k, throwing, inputsOf(c))), `${c.name}: a throwing parameter`).not.toMatch(/^threw/);
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
          if (kindOf(r) !== 'shape') expect(problems(c, r), `${c.name}: out.${output} over ${input}`).toEqual([]);
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
