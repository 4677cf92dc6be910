#!/usr/bin/env bash
# One call on a lent GPU machine (run from the repository root: bash bench/gpu/check.sh):
#   1. builds librlhf.so (CPU + CUDA kernels) for this GPU's architecture only, -j16, and the C++ test
#      native/tests/cuda_kernels_test.cpp (every row layout against the CPU kernels; CI runs the same
#      test on the host emulator), which runs first; bench/gpu/sass.py reads the row kernels' machine code;
#   2. checks every CUDA kernel against float64 PyTorch references and the CPU kernels (basic, then the
#      automatic row layout on every shape, each phase in its own process so that one crash cannot hide
#      the others), and the CPU kernels of the same library against the same references;
#   3. times each kernel in its automatic layout, run 2's automatic layout, run 2's fastest layout and
#      (kernels with an [n, v] output) the kept layouts: the row in shared memory with 4 steps in flight,
#      or in registers (also loading the next row ahead); against a device-to-device copy and PyTorch eager measured in the same run
#      (RLHF_GPU_DEADLINE, default 240 s from the start, cuts the phases that would pass it);
#   4. prints one table. $OUT (or /tmp/rlhf-gpu-check) gets exactly check.log (this summary, the table),
#      harness.log, kernels_test.log, sass.log, results.json and results.md; build logs and per-phase JSON stay in a /tmp folder.
# Needs nvcc, cmake, python3 with torch (CUDA build) and numpy; no Node, no network.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT_DIR=${OUT:-/tmp/rlhf-gpu-check}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/check.log"
: > "$LOG"
WORK=$(mktemp -d /tmp/rlhf-gpu-work.XXXXXX)  # configure/build logs and part-*.json: not returned
say() { echo "$@" | tee -a "$LOG"; }
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }

export PATH="$PATH:/usr/local/cuda/bin"
say "== rlhf-ts GPU check, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?') =="
nvidia-smi --query-gpu=name,compute_cap,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,memory.used,memory.total --format=csv 2>&1 | tee -a "$LOG"
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
[[ "$ARCH" =~ ^[0-9]+$ ]] || ARCH=90
say "nvcc: $(command -v nvcc || echo 'not found') $(nvcc --version 2>/dev/null | tail -1); cmake $(cmake --version | head -1); arch sm_$ARCH"
python3 -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__)" 2>&1 | tee -a "$LOG"

# ---- 1. build -----------------------------------------------------------------------------------------
BUILD="$ROOT/native/build/gpu-check"
say "== build (sm_$ARCH) =="
if ! cmake -S native -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DRLHF_TESTS=ON \
    > "$WORK/configure.log" 2>&1; then
  tail -40 "$WORK/configure.log" | tee -a "$LOG"
  say "FAILED: cmake configure"
  exit 1
fi
grep -i "cuda compiler identification" "$WORK/configure.log" | head -2 | tee -a "$LOG"
if ! cmake --build "$BUILD" --target rlhf rlhf_cuda_kernels_test -j16 > "$WORK/build.log" 2>&1; then
  grep -E "error|Error" "$WORK/build.log" | head -40 | tee -a "$LOG"
  say "FAILED: build"
  exit 1
fi
LIB="$BUILD/librlhf.so"
if command -v nm >/dev/null && [ "$(nm -D "$LIB" | grep -c " T rlhf_cuda_logprobs_f32")" = 0 ]; then  # grep -c: -q would SIGPIPE nm under pipefail
  say "FAILED: $LIB has no CUDA kernels (was nvcc found at configure? see configure.log)"
  exit 1
fi
say "built $LIB in $(elapsed) s"
# What the row kernels compiled to (registers, spills, load/store widths), and its two checks (sass.py).
timeout 60 python3 bench/gpu/sass.py --arch "sm_$ARCH" "$LIB" > "$OUT_DIR/sass.log" 2>&1
say "   sass.py: exit $? ($(tail -1 "$OUT_DIR/sass.log"))"
grep "^FAIL" "$OUT_DIR/sass.log" | head -5 | sed 's/^/   /' | tee -a "$LOG"

# ---- 2-3. check and time, one process per phase ---------------------------------------------------------
DEADLINE=${RLHF_GPU_DEADLINE:-240}  # seconds from the start; phases that would pass it are cut or skipped
run_phase() {  # phase, time limit in seconds
  local phase=$1 limit=$2
  local left=$(( DEADLINE - $(elapsed) ))
  if (( left < 20 )); then say "== $phase: skipped (deadline) =="; return; fi
  (( limit > left )) && limit=$left
  say "== $phase (limit ${limit}s, at $(elapsed) s) =="
  local before; before=$(wc -l < "$OUT_DIR/harness.log")  # this phase's lines only, below
  timeout --kill-after=10 "$limit" python3 bench/gpu/harness.py --lib "$LIB" --out "$OUT_DIR" --parts "$WORK" --phase "$phase" \
    >> "$OUT_DIR/harness.log" 2>&1
  local rc=$?
  case $rc in
    0) say "   $phase: all passed" ;;
    124|137) say "   $phase: TIMED OUT after ${limit}s (a hang? see harness.log)" ;;
    *) say "   $phase: exit $rc (failures or a crash; see harness.log)" ;;
  esac
  tail -n "+$((before + 1))" "$OUT_DIR/harness.log" | grep -E "FAIL|Error|WRONG| failed" | tail -5 | sed 's/^/   /' |
    tee -a "$LOG" >/dev/null
}
: > "$OUT_DIR/harness.log"
say "== cuda_kernels_test (limit 60s, at $(elapsed) s) =="
timeout --kill-after=10 60 "$BUILD/rlhf_cuda_kernels_test" > "$OUT_DIR/kernels_test.log" 2>&1
say "   cuda_kernels_test: exit $? ($(tail -1 "$OUT_DIR/kernels_test.log"))"
grep FAIL "$OUT_DIR/kernels_test.log" | head -5 | sed 's/^/   /' | tee -a "$LOG" >/dev/null
# Most important first: the deadline cuts the tail. rows:auto also checks the CPU kernels (float64
# references, same inputs); time compares auto, run2-auto and run 2's fastest layout (harness.py
# timed_variants). Run 3 took 6 s, 11 s and ~10 s for these three on an H200 (run 4 times 40 more).
run_phase basic 60
run_phase rows:auto 90
run_phase time 120
# The kept layouts on every shape (odd sizes, misaligned rows, +-1e4 logits): what one needs before it
# can become automatic. Last, so the deadline cuts these first.
for variant in cached,u4 registers,u4 registers,u8 registers,1024x8 registers,u4,ahead,2/SM; do
  run_phase "rows:$variant" 60
done

# ---- 4. the table -----------------------------------------------------------------------------------------
say "== results (total $(elapsed) s) =="
grep -E "\[FAIL\]" "$OUT_DIR/harness.log" | head -20 | tee -a "$LOG"
python3 bench/gpu/harness.py --out "$OUT_DIR" --parts "$WORK" --phase report 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
