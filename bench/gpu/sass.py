#!/usr/bin/env python3
"""What the row kernels compiled to, read from their machine code (cuobjdump), and two checks on it
that no timing shows directly.

    python3 bench/gpu/sass.py [--arch sm_90] FILE...     FILE: librlhf.so or the rlhf_cuda_objects .o files

Prints one line per row kernel (rowKernel<Op, threads, unroll, vec, keep>): registers, stack frame
(where spills go; LDL/STL in the list), and its global and local loads and stores by width and cache hint. Checks, on every vectorised row
kernel (rows 16-byte aligned) that writes an [n, v] output:
  1. the output goes out 16 bytes at a time on both gradient-pass paths: as many plain 16-byte stores
     (STG.E.128) as evict-first ones (STG.E.EF.128), and at least one;
  2. where [n, v] is its only output (logprobs backward, logsoftmax, logsoftmax backward), no plain
     4-byte global store at all (the device flag is a STRONG.SYS store, and not counted).
Until rows.cuh spelled out its plain vector store, nvcc 13 split the first of every unrolled group of
stores into four 4-byte ones, and __stwb compiled to a strong store; both checks fail on such code.
Exit status: 0 checks passed, 1 a check failed, 3 skipped (no cuobjdump on PATH: the lent GPU machines
have one, and so does Triton's wheel, under triton/backends/nvidia/bin).
"""
import argparse
import collections
import re
import shutil
import subprocess
import sys

KEEP = {"0": "re-read", "1": "shared", "2": "registers", "3": "registers,ahead"}
NV_ONLY = ("LogprobsBackwardOp", "LogsoftmaxOp", "LogsoftmaxBackwardOp")  # [n, v] is the only output
WRITES = NV_ONLY + ("KlFullOp<true",)                                     # an [n, v] output
MEMORY = re.compile(r"\b(?:LDG|STG|LDL|STL)(?:\.[A-Z0-9_]+)*")
ROW_KERNEL = re.compile(r"rowKernel<(?:\(anonymous namespace\)::)?(.+), (\d+), (\d+), (true|false), \(Keep\)(\d)>")


def cuobjdump(flag, arch, path):
    out = subprocess.run(["cuobjdump", flag, "-arch", arch, path], capture_output=True, text=True)
    return out.stdout


def by_function(text, header):
    """{mangled name: the lines under it} for a cuobjdump listing whose functions start with `header`."""
    functions, name = collections.defaultdict(list), None
    for line in text.splitlines():
        m = re.search(header, line)
        if m:
            name = m.group(1)
        elif name:
            functions[name].append(line)
    return functions


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, (n.replace("rlhf_cuda::", "") for n in out)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if not shutil.which("cuobjdump"):
        print("sass.py: skipped, no cuobjdump on PATH")
        return 3
    failures, rows = [], []
    for path in args.files:
        sass = by_function(cuobjdump("-sass", args.arch, path), r"Function : (\S+)")
        usage = by_function(cuobjdump("-res-usage", args.arch, path), r"Function (\S+):")
        names = demangle(sorted(sass))
        for mangled, lines in sass.items():
            m = ROW_KERNEL.search(names[mangled])
            if not m:
                continue
            op, threads, unroll, vec, keep = m.groups()
            count = collections.Counter(x.group(0) for line in lines for x in [MEMORY.search(line)] if x)
            res = dict(f.split(":", 1) for f in (usage.get(mangled) or [""])[0].split() if ":" in f)  # REG:40 STACK:0 ...
            regs, stack = res.get("REG", "?"), res.get("STACK", "?")
            shape = f"{op} {threads}x{unroll} {'vec' if vec == 'true' else 'scalar'} {KEEP[keep]}"
            mix = " ".join(f"{k}:{v}" for k, v in sorted(count.items()))
            rows.append(f"{shape:58s} REG {regs:>3s} STACK {stack:>3s}  {mix}")
            if vec != "true" or not op.startswith(WRITES):
                continue
            plain, evict_first = count["STG.E.128"], count["STG.E.EF.128"]
            if plain == 0 or plain != evict_first:
                failures.append(f"{shape}: {plain} plain and {evict_first} evict-first 16-byte stores")
            if op.startswith(NV_ONLY) and count["STG.E"]:
                failures.append(f"{shape}: {count['STG.E']} plain 4-byte global stores")
    print("\n".join(sorted(rows)))
    if not rows:
        failures.append(f"no row kernels for {args.arch} in {' '.join(args.files)}")
    for f in failures:
        print("FAIL", f)
    print(f"sass.py: {len(rows)} row kernels ({args.arch}), {len(failures)} failed checks")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
