// The schedule shared by every row kernel (logprobs, their backward, logsoftmax, kl.full).
//
// A row op describes the math; this file decides who reads what:
//   phase 1  one pass over the row's inputs, folding them into the op's online statistics
//            (four elements per thread per step: a 16-byte load when rows are 16-byte aligned);
//   reduce   warp shuffles, then the block's warps, then (when a row is split) the blocks of a
//            thread-block cluster through distributed shared memory, always in the same order;
//   finish   the op turns the statistics into per-row values (and writes its per-row outputs);
//   phase 2  (ops with an [n, v] output) each thread rewrites the very elements it read, from the
//            copy it kept in shared memory (cached), from the registers phase 1 loaded them into (a
//            part small enough that one step covers it), or from global memory again (L2 hits; the
//            re-read and the output stream with the evict-first hint).
// Small rows (v <= 1024) take one warp each; larger ones a block (256 or 512 threads, 2 or 4 steps
// in flight) or a cluster of blocks on as many multiprocessors, as the per-op table kAutoLayouts says
// (the layouts an H200 ran fastest, and an H100 where its slower memory favours others); too few rows
// to fill the chip are split over a cluster.
// Benchmarks can pick the block size, the unroll depth, the hints, the split, the cache and a
// persistent grid (rlhf_cuda_set_row_schedule) to compare layouts in one run.
//
// An op whose row statistics a forward saved (kSavedStats) has no phase 1 and no reduction: finish
// reads them, and phase 2 reads each element once (a stream, like a copy).
//
// The op interface (see logprobs.cu for an example):
//   kIn, kWrites, kOp (its row in kAutoLayouts), Stats {identity}, combine(a, b), Row,
//   input(k), output(), pad(k), state(row), accumulate(Stats&, x[kIn][4]), finish(stats, row, state, leader),
//   element(Row, x[kIn], col), fill(state); optionally kSavedStats
#pragma once

#include <cooperative_groups.h>

#include <algorithm>
#include <cstdio>
#include <type_traits>

#include "online.cuh"
#include "runtime.cuh"

// Thread-block clusters: device code for sm_90 and newer, and the tests' host emulator.
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(RLHF_CUDA_EMULATOR)
#define RLHF_CLUSTERS 1
#else
#define RLHF_CLUSTERS 0
#endif

namespace rlhf_cuda {

enum RowState : int { kActive = 0, kIgnored = 1, kBadIndex = 2 };

// Where the gradient pass finds the row it rewrites (RowTuning::keepRows uses the same numbers).
enum class Keep : int {
  kReRead = 0,     // global memory again (L2 if it is still there, else HBM: 1.5x the bytes of a backward)
  kShared = 1,     // a copy in shared memory: parts of at most 64 KB per block
  kRegisters = 2,  // the values phase 1 loaded, never spilled: parts of 4 * threads * unroll elements
  kRegistersAhead = 3,  // the same, and a block with several rows loads the next row's part into a
                        // second set of registers before it writes this row's gradient
};
__host__ __device__ constexpr bool inRegisters(Keep k) { return k == Keep::kRegisters || k == Keep::kRegistersAhead; }
// How a launch description (rlhf_cuda_last_launch) names where the row is kept; re-reading has no name.
inline const char* keepName(Keep k) {
  static const char* const names[] = {"", "cached", "registers", "registers+ahead"};
  return names[int(k)];
}

constexpr int kBlockThreads = 512;
constexpr int kWarpRows = 8;  // rows per 256-thread block in warp mode
constexpr int64_t kWarpMaxV = 1024;
constexpr size_t kCacheBudget = 64 * 1024 + 512;  // shared memory per block that still allows 3 blocks/SM

__device__ __forceinline__ void raiseFlag(int* flag) { *reinterpret_cast<volatile int*>(flag) = 1; }

template <class S>
__device__ __forceinline__ S shuffleXor(const S& s, int mask) {
  static_assert(sizeof(S) % sizeof(float) == 0, "statistics are plain floats");
  S out;
  const float* in = reinterpret_cast<const float*>(&s);
  float* o = reinterpret_cast<float*>(&out);
#pragma unroll
  for (int i = 0; i < int(sizeof(S) / sizeof(float)); i++) o[i] = __shfl_xor_sync(0xffffffffu, in[i], mask);
  return out;
}

template <class S>
__device__ __forceinline__ S broadcastLane0(const S& s) {
  S out;
  const float* in = reinterpret_cast<const float*>(&s);
  float* o = reinterpret_cast<float*>(&out);
#pragma unroll
  for (int i = 0; i < int(sizeof(S) / sizeof(float)); i++) o[i] = __shfl_sync(0xffffffffu, in[i], 0);
  return out;
}

// An op with `static constexpr bool kSavedStats = true` takes its row statistics from memory (the
// forward saved them): its kernel has no statistics pass, so every row is read once.
template <class Op, class = void>
struct SavedStats : std::false_type {};
template <class Op>
struct SavedStats<Op, std::void_t<decltype(Op::kSavedStats)>> : std::bool_constant<Op::kSavedStats> {};
template <class Op>
__host__ __device__ constexpr bool savedStats() {
  return SavedStats<Op>::value;
}

// Every lane gets lane 0's result, so that all lanes use bit-identical row statistics.
template <class Op, class S>
__device__ __forceinline__ S warpAllReduce(const Op& op, S s) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) s = op.combine(s, shuffleXor(s, mask));
  return broadcastLane0(s);
}

// Which four elements of a chunk a thread handles at step `it`: four consecutive ones (one float4)
// when rows are aligned, else four coalesced scalars a block-width apart.
template <bool kVec>
__device__ __forceinline__ int64_t elementAt(int64_t begin, int it, int j, int tid, int nthreads) {
  return kVec ? begin + 4 * (int64_t(it) * nthreads + tid) + j : begin + (int64_t(it) * 4 + j) * nthreads + tid;
}

// One plain (weak) 16-byte store. nvcc 13 compiled `*reinterpret_cast<float4*>(p) = y` into four 4-byte
// stores for the first step of every unrolled group, and __stwb into a strong (.STRONG.SM) store (both
// seen in the sm_90 SASS; bench/gpu/sass.py checks the kernels for it), so the instruction is spelled out.
__device__ __forceinline__ void storeVec4(float4* p, float4 y) {
#ifdef __CUDA_ARCH__
  asm("st.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(y.x), "f"(y.y), "f"(y.z), "f"(y.w) : "memory");
#else
  *p = y;  // the host build of the emulated tests
#endif
}

// Global accesses of the gradient pass. With `streaming`, the re-read of an input (its last use) and
// the [n, v] output carry the evict-first hint (ld/st.global.cs): they do not push the rows that other
// blocks are still to re-read out of L2. Plain coherent accesses either way (never ld.global.nc: the
// output may alias an input).
__device__ __forceinline__ float4 loadVec(const float* p, bool streaming) {
  return streaming ? __ldcs(reinterpret_cast<const float4*>(p)) : *reinterpret_cast<const float4*>(p);
}
__device__ __forceinline__ float loadScalar(const float* p, bool streaming) { return streaming ? __ldcs(p) : *p; }
__device__ __forceinline__ void storeVec(float* p, float4 y, bool streaming) {
  if (streaming) {
    __stcs(reinterpret_cast<float4*>(p), y);
  } else {
    storeVec4(reinterpret_cast<float4*>(p), y);
  }
}
__device__ __forceinline__ void storeScalar(float* p, float y, bool streaming) {
  if (streaming) {
    __stcs(p, y);
  } else {
    *p = y;
  }
}

template <class Op, bool kVec>
__device__ __forceinline__ void loadStep(const Op& op, int64_t rowBase, int64_t begin, int64_t end, int it, int tid,
                                         int nthreads, bool streaming, float (&x)[Op::kIn][4]) {
#pragma unroll
  for (int k = 0; k < Op::kIn; k++) {
    const float* in = op.input(k) + rowBase;
    if (kVec) {
      const int64_t e = elementAt<true>(begin, it, 0, tid, nthreads);
      if (e < end) {
        const float4 q = loadVec(in + e, streaming);
        x[k][0] = q.x, x[k][1] = q.y, x[k][2] = q.z, x[k][3] = q.w;
      } else {
        x[k][0] = x[k][1] = x[k][2] = x[k][3] = op.pad(k);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t e = elementAt<false>(begin, it, j, tid, nthreads);
        x[k][j] = e < end ? loadScalar(in + e, streaming) : op.pad(k);
      }
    }
  }
}

// The shared-memory copy of a chunk: each thread stores and later loads only its own elements (the
// same elementAt in both passes), so the copy needs no barrier between the passes or between rows.
// x is one step's [Op::kIn][4] values, passed as a pointer: as a reference to the array, GCC 12 at -O3
// for AArch64 (the emulator build) warned of an out-of-bounds subscript that is not there.
template <class Op, bool kVec>
__device__ __forceinline__ void cacheStep(float* cache, int64_t cacheStride, int64_t begin, int64_t end, int it,
                                          int tid, int nthreads, const float (*x)[4]) {
#pragma unroll
  for (int k = 0; k < Op::kIn; k++) {
    float* c = cache + k * cacheStride - begin;
    if (kVec) {
      const int64_t e = elementAt<true>(begin, it, 0, tid, nthreads);
      if (e < end) *reinterpret_cast<float4*>(c + e) = make_float4(x[k][0], x[k][1], x[k][2], x[k][3]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t e = elementAt<false>(begin, it, j, tid, nthreads);
        if (e < end) c[e] = x[k][j];
      }
    }
  }
}

template <class Op, bool kVec>
__device__ __forceinline__ void uncacheStep(const float* cache, int64_t cacheStride, int64_t begin, int64_t end,
                                            int it, int tid, int nthreads, float (&x)[Op::kIn][4]) {
#pragma unroll
  for (int k = 0; k < Op::kIn; k++) {
    const float* c = cache + k * cacheStride - begin;
    if (kVec) {
      const int64_t e = elementAt<true>(begin, it, 0, tid, nthreads);
      const float4 q = e < end ? *reinterpret_cast<const float4*>(c + e) : make_float4(0.f, 0.f, 0.f, 0.f);
      x[k][0] = q.x, x[k][1] = q.y, x[k][2] = q.z, x[k][3] = q.w;
    } else {
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int64_t e = elementAt<false>(begin, it, j, tid, nthreads);
        x[k][j] = e < end ? c[e] : 0.f;
      }
    }
  }
}

template <class Op, bool kVec>
__device__ __forceinline__ void writeStep(const Op& op, const typename Op::Row& r, int state, int64_t rowBase,
                                          int64_t begin, int64_t end, int it, int tid, int nthreads, bool streaming,
                                          const float (&x)[Op::kIn][4]) {
  float y[4];
  if (state == kActive) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      float xj[Op::kIn];
#pragma unroll
      for (int k = 0; k < Op::kIn; k++) xj[k] = x[k][j];
      y[j] = op.element(r, xj, elementAt<kVec>(begin, it, j, tid, nthreads));
    }
  } else {
    y[0] = y[1] = y[2] = y[3] = op.fill(state);
  }
  float* out = op.output() + rowBase;
  if (kVec) {
    const int64_t e = elementAt<true>(begin, it, 0, tid, nthreads);
    if (e < end) storeVec(out + e, make_float4(y[0], y[1], y[2], y[3]), streaming);
  } else {
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t e = elementAt<false>(begin, it, j, tid, nthreads);
      if (e < end) storeScalar(out + e, y[j], streaming);
    }
  }
}

// kThreads == 32: one warp per row, kWarpRows rows per block. Otherwise a block (or a cluster of
// gridDim.y blocks, each owning `chunk` elements) per row. Rows are visited grid-stride. Both passes
// load kUnroll steps (kUnroll · 16 bytes per input per thread) before using the first.
// Blocks per multiprocessor each configuration must fit (a register cap): 512 threads with 2 steps in
// flight: 3 (40 registers; 32 for 4 blocks made kl.full spill), 4 steps in flight: 1024 threads per
// multiprocessor (64 registers); more than 32 floats per thread kept in registers (the row's part, and
// with kRegistersAhead the next row's): one block (up to 128 registers; 1024 threads: 64).
constexpr int minBlocksFor(int threads, int unroll, int inputs, Keep keep) {
  if (threads == 32) return 1;
  if (inRegisters(keep) && (keep == Keep::kRegistersAhead ? 2 : 1) * 4 * unroll * inputs > 32) return 1;
  return unroll >= 4 ? 1024 / threads : 3;
}

template <class Op, int kThreads, int kUnroll, bool kVec, Keep kKeep>
__global__ void __launch_bounds__(kThreads == 32 ? 32 * kWarpRows : kThreads,
                                  minBlocksFor(kThreads, kUnroll, Op::kIn, kKeep))
    rowKernel(const Op op, int64_t n, int64_t v, int64_t chunk, int streaming) {
  using Stats = typename Op::Stats;
  constexpr bool kWarp = kThreads == 32;
  constexpr int kWarps = kWarp ? kWarpRows : kThreads / 32;
  // Double-buffered by row parity: the next row writes the other slot, so one barrier per row suffices.
  __shared__ Stats scratch[2][kWarps];
  __shared__ Stats clusterSlot[2];
  extern __shared__ float4 dynamicShared[];
  float* cache = reinterpret_cast<float*>(dynamicShared);

  const int tid = kWarp ? int(threadIdx.x & 31) : int(threadIdx.x);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int csize = kWarp ? 1 : int(gridDim.y);
  const int crank = kWarp ? 0 : int(blockIdx.y);
  const int64_t begin = kWarp ? 0 : crank * chunk;
  const int64_t end = kWarp ? v : (begin + chunk < v ? begin + chunk : v);
  const int steps = end > begin ? int((end - begin + 4 * kThreads - 1) / (4 * kThreads)) : 0;
  const int64_t rowStride = kWarp ? int64_t(gridDim.x) * kWarpRows : int64_t(gridDim.x);
  int64_t row = kWarp ? int64_t(blockIdx.x) * kWarpRows + warp : int64_t(blockIdx.x);
  const bool stream = streaming != 0;
  constexpr bool kStatsPass = !savedStats<Op>();  // else phase 1 and the reductions are skipped
  constexpr bool kCache = kKeep == Keep::kShared;
  constexpr bool kResident = inRegisters(kKeep);  // the planner made steps <= kUnroll
  constexpr bool kAhead = kKeep == Keep::kRegistersAhead;
  float kept[kResident ? kUnroll : 1][Op::kIn][4];  // kResident: this thread's part of the row
  float ahead[kAhead ? kUnroll : 1][Op::kIn][4];    // kAhead: the next row's part, loaded during the writes
  bool prefetched = false;                          // kept already holds this row (loaded by the last one)

  for (int parity = 0; row < n; row += rowStride, parity ^= 1) {
    const int64_t rowBase = row * v;
    const int state = op.state(row, v, tid == 0 && crank == 0);
    Stats st = Stats::identity();
    if constexpr (!kStatsPass) {
      // finish reads the saved statistics
    } else if constexpr (kResident) {
      // The whole part in one step: every load is in flight before the first is used.
      if (state == kActive) {
        if (!prefetched) {
#pragma unroll
          for (int u = 0; u < kUnroll; u++) loadStep<Op, kVec>(op, rowBase, begin, end, u, tid, kThreads, false, kept[u]);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) op.accumulate(st, kept[u]);
      }
    } else if (state == kActive) {
      for (int it = 0; it < steps; it += kUnroll) {
        float x[kUnroll][Op::kIn][4];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) loadStep<Op, kVec>(op, rowBase, begin, end, it + u, tid, kThreads, false, x[u]);
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
          op.accumulate(st, x[u]);
          if (kCache) cacheStep<Op, kVec>(cache, chunk, begin, end, it + u, tid, kThreads, x[u]);
        }
      }
    }
    if (kStatsPass) st = warpAllReduce(op, st);
    if (!kWarp && kStatsPass) {
      if (lane == 0) scratch[parity][warp] = st;
      __syncthreads();
      st = scratch[parity][0];
#pragma unroll
      for (int w = 1; w < kWarps; w++) st = op.combine(st, scratch[parity][w]);
#if RLHF_CLUSTERS
      if (csize > 1) {
        namespace cg = cooperative_groups;
        cg::cluster_group cluster = cg::this_cluster();
        if (threadIdx.x == 0) clusterSlot[parity] = st;
        cluster.sync();
        st = *cluster.map_shared_rank(&clusterSlot[parity], 0);
        for (int r = 1; r < csize; r++) st = op.combine(st, *cluster.map_shared_rank(&clusterSlot[parity], r));
      }
#endif
    }
    const typename Op::Row r = op.finish(st, row, state, tid == 0 && crank == 0);
    if constexpr (Op::kWrites && kResident) {
      prefetched = false;
      if constexpr (kAhead) {
        // The next row's loads go out before this row's stores (an ignored row is never read; asking
        // its state again here raises no flag: its own turn does).
        const int64_t next = row + rowStride;
        if (next < n && op.state(next, v, false) == kActive) {
#pragma unroll
          for (int u = 0; u < kUnroll; u++)
            loadStep<Op, kVec>(op, next * v, begin, end, u, tid, kThreads, false, ahead[u]);
          prefetched = true;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; u++) writeStep<Op, kVec>(op, r, state, rowBase, begin, end, u, tid, kThreads, stream, kept[u]);
      if constexpr (kAhead) {
        if (prefetched) {
#pragma unroll
          for (int u = 0; u < kUnroll; u++)
#pragma unroll
            for (int k = 0; k < Op::kIn; k++)
#pragma unroll
              for (int j = 0; j < 4; j++) kept[u][k][j] = ahead[u][k][j];
        }
      }
    } else if (Op::kWrites) {
      for (int it = 0; it < steps; it += kUnroll) {
        float x[kUnroll][Op::kIn][4];
        if (state == kActive) {
#pragma unroll
          for (int u = 0; u < kUnroll; u++) {
            if (kCache) {
              uncacheStep<Op, kVec>(cache, chunk, begin, end, it + u, tid, kThreads, x[u]);
            } else {
              loadStep<Op, kVec>(op, rowBase, begin, end, it + u, tid, kThreads, stream, x[u]);
            }
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) writeStep<Op, kVec>(op, r, state, rowBase, begin, end, it + u, tid, kThreads, stream, x[u]);
      }
    }
  }
#if RLHF_CLUSTERS
  // No block leaves while another block of its cluster may still read its slot.
  if (!kWarp && kStatsPass && csize > 1) cooperative_groups::this_cluster().sync();
#endif
  (void)csize;
  (void)clusterSlot;
}

// The row ops, each with its own entry in the automatic layout table.
enum class RowOp {
  kLogprobs,
  kLogprobsBackward,
  kLogprobsBackwardSaved,
  kLogsoftmax,
  kLogsoftmaxBackward,
  kKl,
  kKlGradient,
  kKlGradientSaved,
};

// How the blocks of a row kernel share the rows (phase 1 and 2 as in the file comment).
struct RowLayout {
  int threads;      // block size: 512 or 256 (256 only re-reading; 1024 only in registers; misaligned rows: 512)
  int unroll;       // steps loaded before the first is used: 2 or 4 (256 threads: 4); kept in registers: 4 or 8
  int split;        // > 1: every row split over a cluster of this many blocks, re-read (no copy)
  Keep keep;        // where the gradient pass finds the row (kReRead: global memory)
  int keepCluster;  // a kept row: over a cluster of at most this many blocks
  bool streaming;   // evict-first hints on the gradient pass (the re-read and the [n, v] output)
  int blocksPerSm;  // > 0: a persistent grid of that many blocks per multiprocessor; 0: a block per row
};

// The layouts run 2 timed (bench/gpu/harness.py TIME_VARIANTS of the same names).
constexpr RowLayout kReReadPlain{512, 2, 0, Keep::kReRead, 0, false, 0};  // "re-read,plain": a block per row, no hints
constexpr RowLayout kReReadU4{512, 4, 0, Keep::kReRead, 0, true, 0};      // "re-read,stream,u4"
constexpr RowLayout kReRead256x4{256, 4, 0, Keep::kReRead, 0, true, 0};   // "re-read,stream,256x4"
constexpr RowLayout kSplit8{512, 2, 8, Keep::kReRead, 0, true, 0};        // "split8,re-read,stream": parts of v/8
constexpr RowLayout kCached4{512, 2, 0, Keep::kShared, 4, true, 0};  // run 2's auto: parts of <= 64 KB over <= 4 blocks
constexpr RowLayout kCached8{512, 2, 0, Keep::kShared, 8, true, 0};  // the same over <= 8 blocks
// "registers,u8" over at most 8 blocks (the automatic layouts' largest cluster): rows of <= 131072
constexpr RowLayout kInRegistersU8{512, 8, 0, Keep::kRegisters, 8, true, 0};

// The automatic layout per op and row length: the fastest correct layout of run 2 (H200, 2026-11-27,
// bench/results/gpu/h200-check-run2.log; times in µs at 4096×32000 and 1024×128256, the layout chosen
// vs run 2's automatic one), and the fastest of the one-block-per-row layouts for devices without
// thread-block clusters (sm_80) and for rows whose cached parts would not fit 64 KB.
// Rows of 32000 and 128256 were measured; the boundary between the two ranges sits between them.
// Where HBM is slower (an H100's 3.35 TB/s peak against an H200's 4.8, same multiprocessors and L2),
// re-reading a row costs more than keeping it: the first entries, for devices whose peak bandwidth is
// under kFastMemoryGBps, are the H100's fastest correct layouts where they beat the H200's by > 5 %
// in both timings (bench/results/gpu/h100-check-run5.log; run 6 confirmed them as auto).
constexpr int64_t kShortRowMax = 65536;
constexpr int64_t kAnyRow = INT64_MAX;
constexpr int kFastMemoryGBps = 4000;
struct AutoLayout {
  RowOp op;
  int64_t maxV;
  RowLayout best;
  RowLayout withoutClusters;
  bool slowMemoryOnly = false;  // only where the device's peak bandwidth is known and < kFastMemoryGBps
};
constexpr AutoLayout kAutoLayouts[] = {
    // H100 (slow memory): µs at 4096×32000 / 1024×128256, this layout vs the H200's entry below
    {RowOp::kLogprobsBackward, kShortRowMax, kReReadU4, kReReadU4, true},  // 409.1 (registers,u8 411.9: no gain)
    {RowOp::kLogprobsBackward, kAnyRow, kInRegistersU8, kReReadU4, true},    // 460.0 vs 528.5 (over 8 blocks)
    {RowOp::kKlGradient, kShortRowMax, kCached4, kReReadU4, true},         // 698.0 vs 765.1 (over 4 blocks)
    {RowOp::kLogsoftmax, kShortRowMax, kReReadU4, kReReadU4, true},        // 373.5 (cached over 2: 360.9, < 5 %)
    {RowOp::kLogsoftmax, kAnyRow, kCached8, kReReadU4, true},              // 385.9 vs 431.1 (over 8 blocks)
    // forward only (no [n, v] output): more loads in flight
    {RowOp::kLogprobs, kShortRowMax, kReRead256x4, kReRead256x4},  // 126.5 vs 142.6
    {RowOp::kLogprobs, kAnyRow, kReReadU4, kReReadU4},             // 126.6 vs 129.1 (256×4: 151.0)
    {RowOp::kKl, kShortRowMax, kReRead256x4, kReRead256x4},        // 237.5 vs 263.4
    {RowOp::kKl, kAnyRow, kReRead256x4, kReRead256x4},             // 237.6 vs 241.0
    // an [n, v] output
    {RowOp::kLogprobsBackward, kShortRowMax, kReReadU4, kReReadU4},  // 339.1 vs 378.0 (cached over 2)
    {RowOp::kLogprobsBackward, kAnyRow, kReReadU4, kReReadU4},       // 389.5 vs 412.5
    // with the forward's saved statistics: one read and one write per element, a stream (not yet timed)
    {RowOp::kLogprobsBackwardSaved, kAnyRow, kReReadU4, kReReadU4},
    {RowOp::kKlGradient, kShortRowMax, kReReadU4, kReReadU4},        // 544.6 vs 675.3 (cached over 4)
    {RowOp::kKlGradient, kAnyRow, kSplit8, kReReadPlain},            // 589.8 vs 640.8 (plain 622.7)
    {RowOp::kKlGradientSaved, kAnyRow, kReReadU4, kReReadU4},        // from saved statistics: a stream (not yet timed)
    {RowOp::kLogsoftmax, kShortRowMax, kReReadU4, kReReadU4},        // 271.2 vs 289.3 (cached over 2)
    {RowOp::kLogsoftmax, kAnyRow, kSplit8, kReReadU4},               // 313.9 vs 318.1 (cached over 8; u4 382.3)
    {RowOp::kLogsoftmaxBackward, kShortRowMax, kCached4, kReReadU4},  // 417.1, run 2's auto (u4 528.5)
    {RowOp::kLogsoftmaxBackward, kAnyRow, kSplit8, kReReadPlain},     // 544.5 vs 637.9 (plain 618.7)
};

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t roundUp4(int64_t a) { return (a + 3) & ~int64_t(3); }

// Shared memory per block for a row of v elements of kIn inputs cached over `parts` blocks.
inline size_t cachedPartBytes(int kIn, int64_t v, int parts) {
  return size_t(kIn) * size_t(roundUp4(ceilDiv(v, parts))) * sizeof(float);
}

// Whether a part of a row of v (kIn inputs) split over `parts` blocks can be kept as the layout says:
// in registers, one step of the block covers it; in shared memory, it takes at most `budget` bytes.
inline bool keptPartFits(const RowLayout& l, int kIn, int64_t v, int parts, size_t budget) {
  if (inRegisters(l.keep)) return roundUp4(ceilDiv(v, parts)) <= int64_t(4) * l.threads * l.unroll;
  return cachedPartBytes(kIn, v, parts) <= budget;
}

// The table's layout for an op with kIn inputs: the best one, unless it needs a cluster the device
// lacks, or a kept part that would not fit; then the best with a block per row.
// A slow-memory entry (measured on an H100, which has clusters) applies only where its layout does as
// measured: with clusters, and with a kept part that fits; otherwise the entries after it decide.
inline RowLayout autoLayout(RowOp op, int kIn, int64_t v, bool clusters, int peakGBps) {
  const bool slowMemory = peakGBps > 0 && peakGBps < kFastMemoryGBps;
  for (const AutoLayout& e : kAutoLayouts) {
    if (e.op != op || v > e.maxV || (e.slowMemoryOnly && !(slowMemory && clusters))) continue;
    const RowLayout& best = e.best;
    int parts = std::max(best.split, 1);  // the blocks per row this layout needs
    if (best.keep != Keep::kReRead) {
      parts = 1;
      while (parts < best.keepCluster && !keptPartFits(best, kIn, v, parts, kCacheBudget)) parts *= 2;
      if (!keptPartFits(best, kIn, v, parts, kCacheBudget)) {
        if (e.slowMemoryOnly) continue;
        return e.withoutClusters;
      }
    }
    return parts > 1 && !clusters ? e.withoutClusters : best;
  }
  return kReReadU4;  // not reached: every op has a kAnyRow entry
}

// The layout a benchmark asked for with rlhf_cuda_set_row_schedule (explicit max_cluster).
inline RowLayout requestedLayout(const RowTuning& t) {
  const Keep keep = Keep(t.keepRows);
  return {t.threads, t.unroll,         t.splitRows, keep, keep == Keep::kReRead ? 0 : 16,
          t.streaming < 0 ? true : t.streaming > 0, t.blocksPerSm};
}

struct RowPlan {
  bool warp = false;
  int cluster = 1;
  Keep keep = Keep::kReRead;
  int64_t chunk = 0;
  size_t smem = 0;
  int threads = kBlockThreads;
  int unroll = 2;
  bool streaming = false;
  int64_t blocks = 0;  // grid.x (rows are visited grid-stride)
};

// The block configurations (threads, unroll) compiled for aligned rows, per place the row is kept;
// everything else runs 512 threads, unroll 2 (kept in registers: aligned rows only).
inline bool compiledShape(Keep keep, int threads, int unroll) {
  switch (keep) {
    case Keep::kReRead: return (threads == 512 && (unroll == 2 || unroll == 4)) || (threads == 256 && unroll == 4);
    case Keep::kShared: return threads == 512 && (unroll == 2 || unroll == 4);
    // 1024 × 8: a row of up to 32768 in one block, no cluster barrier (one input fits 64 registers)
    case Keep::kRegisters: return (threads == 512 && (unroll == 4 || unroll == 8)) || (threads == 1024 && unroll == 8);
    case Keep::kRegistersAhead: return threads == 512 && unroll == 4;
  }
  return false;
}

// How a call with these sizes is laid out (see the file comment).
//   automatic (tuning.maxCluster == 0): the layout of kAutoLayouts for the op and row length; a cached
//   row needs its parts to fit kCacheBudget (3 blocks per multiprocessor).
//   explicit maxCluster (benchmarks): the tuning's layout; a row is cached wherever its part fits the
//   multiprocessor (kept in registers: one step of the block), over at most maxCluster blocks.
//   Either way, too few rows to fill the chip are split over a cluster (sm_90).
template <class Op>
RowPlan planRows(int64_t n, int64_t v, bool vec, const DeviceInfo& d, const RowTuning& tuning) {
  RowPlan p;
  if (v <= kWarpMaxV) {
    p.warp = true;
    p.chunk = v;
    p.blocks = std::min<int64_t>(ceilDiv(n, kWarpRows), int64_t(d.sms) * 64);
    return p;
  }
  const bool automatic = tuning.maxCluster <= 0;
  const int hardMax = d.major >= 9 ? 16 : 1;
  const int maxCluster = automatic ? std::min(8, hardMax) : std::min(tuning.maxCluster, hardMax);
  const RowLayout layout = automatic ? autoLayout(Op::kOp, Op::kIn, v, hardMax > 1, d.peakGBps) : requestedLayout(tuning);
  const size_t optinLimit = d.smemOptin > 4096 ? size_t(d.smemOptin) - 2048 : 0;  // room for the static part
  const size_t cacheLimit = automatic ? kCacheBudget : optinLimit;
  auto chunkFor = [&](int c) { return roundUp4(ceilDiv(v, c)); };
  auto bytesFor = [&](int c) { return cachedPartBytes(Op::kIn, v, c); };
  int c = 1;
  // Too few rows to fill the chip: split rows (clusters must be a power of two here).
  while (c * 2 <= maxCluster && n * c < 4LL * d.sms && chunkFor(c * 2) >= 4 * kBlockThreads) c *= 2;
  // A split layout: smaller parts per block keep the rows still to be re-read inside L2.
  if (layout.split > 1) c = std::max(c, std::min<int>({layout.split, hardMax, int(std::max<int64_t>(1, v / 4))}));
  const bool keepable = !savedStats<Op>() &&  // read once: nothing to keep
                        (layout.keep == Keep::kShared ||
                         (inRegisters(layout.keep) && vec && compiledShape(layout.keep, layout.threads, layout.unroll)));
  if (Op::kWrites && keepable) {
    const int keepMax = std::min(maxCluster, layout.keepCluster);
    int cc = c;
    while (cc * 2 <= keepMax && !keptPartFits(layout, Op::kIn, v, cc, kCacheBudget)) cc *= 2;
    if (cc <= layout.keepCluster && keptPartFits(layout, Op::kIn, v, cc, cacheLimit)) {
      c = cc;
      p.keep = layout.keep;
      p.smem = layout.keep == Keep::kShared ? bytesFor(cc) : 0;
    }
  }
  p.cluster = c;
  p.chunk = chunkFor(c);
  if (vec && compiledShape(p.keep, layout.threads, layout.unroll)) {
    p.threads = layout.threads;
    p.unroll = layout.unroll;
  }
  p.streaming = Op::kWrites && layout.streaming;
  const int64_t rowsAtOnce = layout.blocksPerSm > 0 ? std::max<int64_t>(1, int64_t(d.sms) * layout.blocksPerSm / c) : n;
  p.blocks = std::min<int64_t>({n, rowsAtOnce, int64_t(1) << 30});
  return p;
}

template <class Op, int kThreads, int kUnroll, bool kVec, Keep kKeep>
cudaError_t launchBlocks(const Op& op, int64_t n, int64_t v, const RowPlan& p, cudaStream_t stream) {
  // A part kept in registers must be covered by one step of the block (else elements would be skipped).
  if (inRegisters(kKeep) && p.chunk > int64_t(4) * kThreads * kUnroll) return cudaErrorInvalidConfiguration;
  auto kernel = rowKernel<Op, kThreads, kUnroll, kVec, kKeep>;
  if (p.smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(p.smem));
    if (err != cudaSuccess) return err;
  }
  if (p.cluster > 8) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    if (err != cudaSuccess) return err;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(p.blocks), unsigned(p.cluster), 1);
  cfg.blockDim = dim3(kThreads, 1, 1);
  cfg.dynamicSmemBytes = p.smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = 1;
  attr[0].val.clusterDim.y = unsigned(p.cluster);
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = p.cluster > 1 ? 1 : 0;
  if (p.cluster > 1) {
    int clusters = 0;
    const cudaError_t err = cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg);
    if (err != cudaSuccess) return err;
    if (clusters < 1) return cudaErrorLaunchOutOfResources;
  }
  return cudaLaunchKernelEx(&cfg, kernel, op, n, v, p.chunk, p.streaming ? 1 : 0);
}

template <class Op, bool kVec>
cudaError_t launchPlan(const Op& op, int64_t n, int64_t v, const RowPlan& p, cudaStream_t stream) {
  if (p.warp) {
    return launchKernel(rowKernel<Op, 32, 2, kVec, Keep::kReRead>, unsigned(p.blocks), 32 * kWarpRows, 0, stream, op, n,
                        v, v, 0);
  }
  if constexpr (Op::kWrites && !savedStats<Op>()) {  // nothing is kept from saved statistics (planRows)
    if (inRegisters(p.keep)) {
      if constexpr (kVec) {
        if (p.keep == Keep::kRegistersAhead) return launchBlocks<Op, 512, 4, true, Keep::kRegistersAhead>(op, n, v, p, stream);
        if (p.threads == 1024) return launchBlocks<Op, 1024, 8, true, Keep::kRegisters>(op, n, v, p, stream);
        if (p.unroll == 8) return launchBlocks<Op, 512, 8, true, Keep::kRegisters>(op, n, v, p, stream);
        return launchBlocks<Op, 512, 4, true, Keep::kRegisters>(op, n, v, p, stream);
      }
      return cudaErrorInvalidConfiguration;  // not planned: registers need 16-byte rows
    }
    if (p.keep == Keep::kShared) {
      if constexpr (kVec) {
        if (p.unroll == 4) return launchBlocks<Op, 512, 4, true, Keep::kShared>(op, n, v, p, stream);
      }
      return launchBlocks<Op, kBlockThreads, 2, kVec, Keep::kShared>(op, n, v, p, stream);
    }
  }
  if constexpr (kVec) {
    if (p.threads == 512 && p.unroll == 4) return launchBlocks<Op, 512, 4, true, Keep::kReRead>(op, n, v, p, stream);
    if (p.threads == 256) return launchBlocks<Op, 256, 4, true, Keep::kReRead>(op, n, v, p, stream);
  }
  return launchBlocks<Op, kBlockThreads, 2, kVec, Keep::kReRead>(op, n, v, p, stream);
}

// Launches `op` over n rows of v on the handle's stream, falling back to the plain one-block-per-row
// layout when the device refuses a cluster or shared-memory configuration.
template <class Op>
rlhf_status launchRows(const Op& op, int64_t n, int64_t v, bool aligned, StreamHandle* h, const char* name) {
  if (n == 0) return RLHF_OK;
  const DeviceInfo& d = *deviceInfo();
  const bool vec = aligned && v % 4 == 0;
  RowPlan p = planRows<Op>(n, v, vec, d, rowTuning());
  auto launch = [&](const RowPlan& plan) {
    return vec ? launchPlan<Op, true>(op, n, v, plan, h->stream) : launchPlan<Op, false>(op, n, v, plan, h->stream);
  };
  cudaError_t err = launch(p);
  if (err != cudaSuccess && !p.warp && (p.cluster > 1 || p.keep != Keep::kReRead)) {
    cudaGetLastError();
    RowPlan plain;
    plain.chunk = v;
    plain.streaming = p.streaming;
    plain.blocks = std::min<int64_t>(n, int64_t(1) << 30);
    p = plain;
    err = launch(p);
  }
  char desc[160];
  if (p.warp) {
    std::snprintf(desc, sizeof desc, "%s: warp %s", name, vec ? "vec4" : "scalar");
  } else {
    std::snprintf(desc, sizeof desc, "%s: block%d unroll%d cluster%d%s%s%s%s grid%lld", name, p.threads, p.unroll,
                  p.cluster, p.keep == Keep::kReRead ? "" : " ", keepName(p.keep), p.streaming ? " streaming" : "", vec ? " vec4" : " scalar",
                  (long long)p.blocks);
  }
  setLastLaunch(desc);
  return check(err, name);
}

// A pointer whose rows start on 16 bytes when v % 4 == 0.
inline bool aligned16(const void* p) { return p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace rlhf_cuda
