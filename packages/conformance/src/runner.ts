import * as E from 'fp-ts/lib/Either.js';
import { backendStatus, backend as getBackend, type BackendName, type Kernels } from '@rlhf/kernels';
import { toRlhfError } from '@rlhf/tensor';
import { decodeTensor, type Case, type EncodedTensor } from './caseFile.js';
import { compareOutput } from './compare.js';
import { OPS, ROUTES, type OpRunner } from './ops.js';

export type Outcome =
  | { readonly status: 'pass' }
  | { readonly status: 'fail'; readonly problems: readonly string[] }
  | { readonly status: 'skip'; readonly reason: string };

export interface CaseResult {
  readonly case: string;
  readonly backend: BackendName;
  readonly outcome: Outcome;
}

const fail = (...problems: string[]): Outcome => ({ status: 'fail', problems });

/**
 * Runs one case on one available backend: errors must be of the case's kind, outputs within tolerance,
 * through the operation itself and through each of its other routes (ROUTES).
 */
export const runCase = (c: Case, backendName: BackendName): Outcome => {
  const op = OPS[c.op];
  if (!op) return fail(`unknown op '${c.op}'`);
  const k = getBackend(backendName);
  if (E.isLeft(k)) return { status: 'skip', reason: k.left.message };
  const problems = [
    ...problemsOf(c, op, k.right),
    ...Object.entries(ROUTES[c.op] ?? {}).flatMap(([route, r]) => problemsOf(c, r, k.right).map((m) => `${route}: ${m}`)),
  ];
  return problems.length === 0 ? { status: 'pass' } : fail(...problems);
};

const problemsOf = (c: Case, op: OpRunner, k: Kernels): string[] => {
  let result: E.Either<unknown, object>;
  try {
    // An optional input given as null is the same as one left out.
    const given = Object.entries(c.inputs).filter((e): e is [string, EncodedTensor] => e[1] !== null);
    const inputs = Object.fromEntries(given.map(([name, t]) => [name, decodeTensor(t)]));
    result = op(k, c.params ?? {}, inputs);
  } catch (e) {
    return [`threw instead of returning a typed error: ${toRlhfError(e).message}`];
  }
  if (c.error !== undefined) {
    if (E.isRight(result)) return [`expected a '${c.error}' error, got a result`];
    const kind = (result.left as { kind?: string }).kind;
    return kind === c.error ? [] : [`expected a '${c.error}' error, got '${kind}': ${String((result.left as Error).message)}`];
  }
  if (E.isLeft(result)) return [`unexpected error: ${String((result.left as Error).message)}`];
  const got = result.right as Record<string, unknown>;
  return Object.entries(c.expected ?? {}).flatMap(([output, t]) => {
    const m = compareOutput(output, got[output], decodeTensor(t), c.tolerance);
    return m ? [`${m.output}: ${m.message}`] : [];
  });
};

/** Every case on every named backend; an unavailable backend skips its cases (never counted as passed). */
export const runConformance = (cases: readonly Case[], backends: readonly BackendName[]): CaseResult[] => {
  const status = new Map(backendStatus().map((s) => [s.name, s]));
  return backends.flatMap((b) => {
    const s = status.get(b);
    return cases.map((c) => ({
      case: c.name,
      backend: b,
      outcome: s?.available ? runCase(c, b) : ({ status: 'skip', reason: s?.reason ?? 'unknown backend' } as Outcome),
    }));
  });
};

export const summarize = (results: readonly CaseResult[]) => ({
  passed: results.filter((r) => r.outcome.status === 'pass').length,
  failed: results.filter((r) => r.outcome.status === 'fail').length,
  skipped: results.filter((r) => r.outcome.status === 'skip').length,
});
