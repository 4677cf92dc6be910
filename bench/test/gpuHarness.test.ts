import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The GPU check (bench/gpu/harness.py) drives the C ABI through ctypes, and runs only on a lent GPU
// machine: a signature that drifted from the headers would waste that time. Checked here instead.
const read = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');

const headerArity = (): Map<string, number> => {
  const text = read('../../native/include/rlhf/kernels.h') + read('../../native/include/rlhf/kernels_cuda.h');
  const arity = new Map<string, number>();
  for (const m of text.matchAll(/RLHF_API\s+[\w\s*]+?\b(rlhf_\w+)\s*\(([^;]*?)\);/g)) {
    const args = m[2]!.trim();
    arity.set(m[1]!, args === '' || args === 'void' ? 0 : args.split(',').length);
  }
  return arity;
};

const harnessArity = (): Map<string, number> => {
  const table = /sig = \{([\s\S]*?)\n {4}\}/.exec(read('../gpu/harness.py'))![1]!;
  const arity = new Map<string, number>();
  for (const m of table.matchAll(/"(rlhf_\w+)": \([^,]+, (\[[^\]]*\])(?: \* (\d+))?\)/g)) {
    const items = m[2]!.slice(1, -1).split(',').filter((a) => a.trim() !== '').length;
    arity.set(m[1]!, m[3] ? items * Number(m[3]) : items);
  }
  return arity;
};

describe('the GPU check harness', () => {
  it("declares every C function it calls with the headers' number of arguments", () => {
    const header = headerArity();
    const harness = harnessArity();
    expect(harness.size).toBeGreaterThan(25);
    for (const [name, n] of harness) expect({ name, arguments: header.get(name) }).toEqual({ name, arguments: n });
  });
});
