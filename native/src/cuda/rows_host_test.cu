// planRows (rows.cuh) on the host, no GPU needed: the automatic layouts are those of kAutoLayouts, the
// explicit kept layouts split rows as the benchmarks expect, and every plan over odd sizes, both
// devices and every schedule the GPU check uses keeps the invariants rowKernel relies on.
// Built with RLHF_TESTS=ON when nvcc is found (rlhf_cuda_rows_test; tests/run-cuda-host.sh runs it).
#include <cstdio>
#include <string>
#include <vector>

#include "rows.cuh"

using namespace rlhf_cuda;

namespace {

// What planRows reads of an op: its table row, its inputs and whether it writes an [n, v] output.
template <RowOp kOpV, int kInV, bool kWritesV>
struct Shape {
  static constexpr RowOp kOp = kOpV;
  static constexpr int kIn = kInV;
  static constexpr bool kWrites = kWritesV;
};
using Logprobs = Shape<RowOp::kLogprobs, 1, false>;
using LogprobsBackward = Shape<RowOp::kLogprobsBackward, 1, true>;
// From the forward's saved statistics: no statistics pass, so never a kept row.
struct LogprobsBackwardSaved : Shape<RowOp::kLogprobsBackwardSaved, 1, true> {
  static constexpr bool kSavedStats = true;
};
using Logsoftmax = Shape<RowOp::kLogsoftmax, 1, true>;
using LogsoftmaxBackward = Shape<RowOp::kLogsoftmaxBackward, 2, true>;
using Kl = Shape<RowOp::kKl, 2, false>;
using KlGradient = Shape<RowOp::kKlGradient, 2, true>;
struct KlGradientSaved : Shape<RowOp::kKlGradientSaved, 2, true> {
  static constexpr bool kSavedStats = true;
};

const DeviceInfo kH200{0, 132, 9, 232448, 4917};  // sm_90: clusters up to 16; 4.9 TB/s peak
const DeviceInfo kH100{0, 132, 9, 232448, 3352};  // the same multiprocessors, 3.35 TB/s: the slow-memory entries
const DeviceInfo kA100{0, 108, 8, 166912, 2039};  // sm_80: no clusters

// rlhf_cuda_set_row_schedule's arguments (maxCluster 0: automatic).
RowTuning schedule(int maxCluster, int keep = 1, int threads = 512, int unroll = 2, int streaming = -1,
                   int blocksPerSm = 0, int split = 0) {
  return {maxCluster, keep, threads, unroll, streaming, blocksPerSm, split};
}
const RowTuning kAuto = schedule(0);
const RowTuning kCachedU4 = schedule(16, 1, 512, 4, 1);
const RowTuning kRegistersU4 = schedule(16, 2, 512, 4, 1);
const RowTuning kRegistersU8 = schedule(16, 2, 512, 8, 1);
const RowTuning kRegisters1024 = schedule(16, 2, 1024, 8, 1);  // a 32000 row in one block
const RowTuning kAheadU4 = schedule(16, 3, 512, 4, 1, 2);  // two blocks per multiprocessor, several rows each

std::string describe(const RowPlan& p) {
  if (p.warp) return "warp";
  const char* keep = p.keep == Keep::kReRead ? "re-read" : keepName(p.keep);
  char s[128];
  std::snprintf(s, sizeof s, "%dx%d c%d %s%s", p.threads, p.unroll, p.cluster, keep, p.streaming ? " stream" : "");
  return s;
}

int failures = 0, checks = 0;

void expect(bool ok, const std::string& what) {
  checks++;
  if (!ok) {
    failures++;
    std::printf("FAIL %s\n", what.c_str());
  }
}

template <class Op>
void expectPlan(const char* op, int64_t n, int64_t v, const DeviceInfo& d, const RowTuning& t, const char* want,
                int64_t wantChunk = 0, bool vec = true) {
  const RowPlan p = planRows<Op>(n, v, vec, d, t);
  const std::string got = describe(p);
  char what[256];
  std::snprintf(what, sizeof what, "%s %lldx%lld sm_%d%s: got \"%s\" chunk %lld, want \"%s\"", op, (long long)n,
                (long long)v, d.major * 10, vec ? "" : " misaligned", got.c_str(), (long long)p.chunk, want);
  expect(got == want && (wantChunk == 0 || p.chunk == wantChunk), what);
}

// What rowKernel and launchPlan rely on, for any plan.
template <class Op>
void checkInvariants(const char* op, int64_t n, int64_t v, bool vec, const DeviceInfo& d, const RowTuning& t) {
  const RowPlan p = planRows<Op>(n, v, vec, d, t);
  char where[160];
  std::snprintf(where, sizeof where, "%s n=%lld v=%lld vec=%d sm_%d tuning(%d,%d,%d,%d,%d,%d,%d): ", op,
                (long long)n, (long long)v, vec, d.major * 10, t.maxCluster, t.keepRows, t.threads, t.unroll,
                t.streaming, t.blocksPerSm, t.splitRows);
  auto need = [&](bool ok, const char* rule) { expect(ok, std::string(where) + rule + " [" + describe(p) + "]"); };
  need(p.blocks >= 1 && p.blocks <= n, "1 <= blocks <= n");
  if (p.warp) {
    need(v <= kWarpMaxV && p.chunk == v, "warp rows are short and whole");
    return;
  }
  const int hardMax = d.major >= 9 ? 16 : 1;
  need(p.cluster >= 1 && p.cluster <= hardMax, "a cluster the device has");
  need(p.chunk % 4 == 0, "parts start on 16 bytes");
  need(p.chunk * p.cluster >= v && p.chunk * (p.cluster - 1) < v, "the parts cover the row, none empty");
  need(vec ? compiledShape(p.keep, p.threads, p.unroll) : p.threads == 512 && p.unroll == 2,
       "a compiled block shape");
  need(!p.streaming || Op::kWrites, "hints only on a gradient pass");
  if (savedStats<Op>()) need(p.keep == Keep::kReRead, "saved statistics: read once, nothing kept");
  switch (p.keep) {
    case Keep::kReRead:
      need(p.smem == 0, "no shared copy when re-reading");
      break;
    case Keep::kShared:
      need(Op::kWrites && p.smem == cachedPartBytes(Op::kIn, v, p.cluster) &&
               p.smem <= size_t(d.smemOptin) - 2048,
           "a shared copy holds the part and fits the multiprocessor");
      break;
    case Keep::kRegisters:
    case Keep::kRegistersAhead:
      need(Op::kWrites && vec && p.smem == 0 && p.chunk <= int64_t(4) * p.threads * p.unroll,
           "one step of the block covers a part kept in registers");
      break;
  }
}

template <class Op>
void sweep(const char* op) {
  const std::vector<RowTuning> tunings = {
      kAuto, schedule(1, 0), schedule(8, 0), schedule(16, 1), schedule(1, 1), schedule(1, 0, 512, 4, 1, 1),
      schedule(1, 0, 256, 4, 1), schedule(8, 1, 0, 0, -1, 1), schedule(4, 0, 512, 2, 1, 0, 4),
      schedule(8, 0, 512, 2, 1, 0, 8), kCachedU4, kRegistersU4, kRegistersU8, schedule(2, 2, 512, 8, 1),
      schedule(16, 2, 256, 8, 1), schedule(16, 2, 512, 2, 1), kAheadU4, schedule(16, 3, 512, 4, 1, 1),
      schedule(16, 3, 512, 8, 1, 2), schedule(4, 3, 512, 4, 0), kRegisters1024, schedule(16, 2, 1024, 4, 1)};
  for (const DeviceInfo& d : {kH200, kH100, kA100})
    for (int64_t n : {1, 7, 48, 4096})
      for (int64_t v : {1, 5, 1024, 1025, 2047, 4099, 16384, 16385, 32000, 32003, 65536, 65540, 128256, 200001,
                        1 << 20})
        for (bool vec : {true, false})
          for (const RowTuning& t : tunings) checkInvariants<Op>(op, n, v, vec && v % 4 == 0, d, t);
}

}  // namespace

int main() {
  // The automatic layouts (kAutoLayouts, measured on an H200) at the two measured shapes.
  expectPlan<Logprobs>("logprobs", 4096, 32000, kH200, kAuto, "256x4 c1 re-read");
  expectPlan<Logprobs>("logprobs", 1024, 128256, kH200, kAuto, "512x4 c1 re-read");
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, kH200, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackwardSaved>("logprobs backward (saved)", 4096, 32000, kH200, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackwardSaved>("logprobs backward (saved)", 1024, 128256, kA100, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackwardSaved>("logprobs backward (saved)", 4096, 32000, kH200, kRegistersU8, "512x2 c1 re-read stream");
  expectPlan<LogprobsBackwardSaved>("logprobs backward (saved)", 4096, 32000, kH200, kCachedU4, "512x4 c1 re-read stream");
  expectPlan<KlGradient>("kl gradient", 4096, 32000, kH200, kAuto, "512x4 c1 re-read stream");
  expectPlan<KlGradientSaved>("kl gradient (saved)", 1024, 128256, kH200, kAuto, "512x4 c1 re-read stream");
  expectPlan<KlGradientSaved>("kl gradient (saved)", 4096, 32000, kH200, kRegistersU4, "512x4 c1 re-read stream");
  expectPlan<KlGradient>("kl gradient", 1024, 128256, kH200, kAuto, "512x2 c8 re-read stream", 16032);
  expectPlan<KlGradient>("kl gradient", 1024, 128256, kA100, kAuto, "512x2 c1 re-read");
  expectPlan<Kl>("kl", 4096, 32000, kH200, kAuto, "256x4 c1 re-read");
  expectPlan<Logsoftmax>("logsoftmax", 1024, 128256, kH200, kAuto, "512x2 c8 re-read stream");
  expectPlan<LogsoftmaxBackward>("logsoftmax backward", 4096, 32000, kH200, kAuto, "512x2 c4 cached stream", 8000);
  expectPlan<LogsoftmaxBackward>("logsoftmax backward", 4096, 32000, kA100, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogsoftmaxBackward>("logsoftmax backward", 4096, 32000, kH200, kAuto, "512x2 c4 cached stream", 8000,
                                 false);
  // Where memory is slower (an H100), the H100's fastest layouts; elsewhere those of the H200; a device
  // whose bandwidth is unknown (peak 0) takes the H200's; one without clusters re-reads.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH100, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, kH100, kAuto, "512x8 c8 registers stream", 16032);
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, kA100, kAuto, "512x4 c1 re-read stream");
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, DeviceInfo{0, 132, 9, 232448, 0}, kAuto,
                               "512x4 c1 re-read stream");
  expectPlan<KlGradient>("kl gradient", 4096, 32000, kH100, kAuto, "512x2 c4 cached stream", 8000);
  expectPlan<KlGradient>("kl gradient", 1024, 128256, kH100, kAuto, "512x2 c8 re-read stream", 16032);
  expectPlan<KlGradientSaved>("kl gradient (saved)", 4096, 32000, kH100, kAuto, "512x4 c1 re-read stream");
  expectPlan<Logsoftmax>("logsoftmax", 4096, 32000, kH100, kAuto, "512x4 c1 re-read stream");
  expectPlan<Logsoftmax>("logsoftmax", 1024, 128256, kH100, kAuto, "512x2 c8 cached stream", 16032);
  expectPlan<LogsoftmaxBackward>("logsoftmax backward", 4096, 32000, kH100, kAuto, "512x2 c4 cached stream", 8000);
  // Beyond what a slow-memory layout keeps (8 parts of 64 KB; registers 8 × 16384), the H200's entry.
  expectPlan<Logsoftmax>("logsoftmax", 1024, 200001, kH100, kAuto, "512x2 c8 re-read stream", 25004);
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 200001, kH100, kAuto, "512x4 c1 re-read stream");
  // Without clusters (an A100 has slow memory too) the plans stay those of a block per row.
  expectPlan<KlGradient>("kl gradient", 4096, 8000, kA100, kAuto, "512x4 c1 re-read stream");
  expectPlan<Logsoftmax>("logsoftmax", 1024, 128256, kA100, kAuto, "512x4 c1 re-read stream");

  // Too few rows to fill the chip: split over a cluster even in the automatic layout.
  expectPlan<LogprobsBackward>("logprobs backward", 48, 32000, kH200, kAuto, "512x4 c8 re-read stream", 4000);
  expectPlan<LogprobsBackward>("logprobs backward", 48, 1000, kH200, kAuto, "warp");

  // The kept layouts the GPU check times: the smallest cluster whose parts fit.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kCachedU4, "512x4 c2 cached stream", 16000);
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kRegistersU8, "512x8 c2 registers stream",
                               16000);
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kRegistersU4, "512x4 c4 registers stream",
                               8000);
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, kH200, kRegistersU8,
                               "512x8 c8 registers stream", 16032);
  expectPlan<KlGradient>("kl gradient", 1024, 128256, kH200, kRegistersU4, "512x4 c16 registers stream", 8016);
  expectPlan<KlGradient>("kl gradient", 4096, 32000, kH200, kCachedU4, "512x4 c4 cached stream", 8000);
  expectPlan<Logsoftmax>("logsoftmax", 4096, 1025, kH200, kRegistersU8, "512x8 c1 registers stream", 1028);
  // 1024 threads × 8 steps: a row of 32000 in one block, no cluster; 128256 over 4.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kRegisters1024,
                               "1024x8 c1 registers stream", 32000);
  expectPlan<LogprobsBackward>("logprobs backward", 1024, 128256, kH200, kRegisters1024,
                               "1024x8 c4 registers stream", 32064);
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kA100, kRegisters1024,
                               "1024x8 c1 registers stream", 32000);
  // Only 8 steps are compiled for 1024 threads: 1024 × 4 falls back to the re-read 512 × 2.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, schedule(16, 2, 1024, 4, 1),
                               "512x2 c1 re-read stream");
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kAheadU4, "512x4 c4 registers+ahead stream",
                               8000);
  expectPlan<KlGradient>("kl gradient", 1024, 128256, kH200, kAheadU4, "512x4 c16 registers+ahead stream", 8016);
  expect(planRows<LogprobsBackward>(4096, 32000, true, kH200, kAheadU4).blocks == 132 * 2 / 4,
         "registers+ahead, 2 blocks per multiprocessor: a persistent grid of 66 clusters of 4");
  // Ahead is compiled for unroll 4 only: asked for with unroll 8, the row is re-read.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, schedule(16, 3, 512, 8, 1),
                               "512x2 c1 re-read stream");
  // Where registers cannot hold the part: misaligned rows, no clusters, no [n, v] output.
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kH200, kRegistersU8, "512x2 c1 re-read stream", 0,
                               false);
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 32000, kA100, kRegistersU8, "512x2 c1 re-read stream");
  expectPlan<LogprobsBackward>("logprobs backward", 4096, 16384, kA100, kRegistersU8, "512x8 c1 registers stream");
  expectPlan<Logprobs>("logprobs", 4096, 32000, kH200, kRegistersU8, "512x2 c1 re-read");

  sweep<Logprobs>("logprobs");
  sweep<LogprobsBackward>("logprobs backward");
  sweep<LogprobsBackwardSaved>("logprobs backward (saved)");
  sweep<Logsoftmax>("logsoftmax");
  sweep<LogsoftmaxBackward>("logsoftmax backward");
  sweep<Kl>("kl");
  sweep<KlGradient>("kl gradient");
  sweep<KlGradientSaved>("kl gradient (saved)");

  std::printf("rows plan: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
