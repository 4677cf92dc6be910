// Chooses the SIMD path at run time (the library is compiled for the x86-64 baseline, whose SSE2 kernels
// every x86-64 CPU runs; the AVX2/FMA and AVX-512 kernels live in their own objects and only run where
// the CPU has them; on AArch64 the NEON kernels, which every such CPU runs), and holds the thread count.
#include <atomic>
#include <cstring>
#include <thread>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

#include "internal.h"

namespace rlhf {
namespace {

#define RLHF_TABLE(ns)                                                                                      \
  RowKernels {                                                                                              \
#ns, ns::logprobs_rows, ns::logprobs_backward_rows, ns::logsoftmax_rows, ns::logsoftmax_backward_rows, \
        ns::kl_full_rows, ns::ranking_prompts, ns::exp_f32, ns::exp2_f32, ns::log1p_f32                                     \
  }

// Every path this build has, best first: best() takes the first the CPU runs.
const RowKernels paths[] = {
#if defined(RLHF_HAVE_AVX512)
    RLHF_TABLE(avx512),
#endif
#if defined(RLHF_HAVE_AVX2)
    RLHF_TABLE(avx2),
#endif
#if defined(RLHF_HAVE_SSE2)
    RLHF_TABLE(sse2),
#endif
#if defined(RLHF_HAVE_NEON)
    RLHF_TABLE(neon),
#endif
    RLHF_TABLE(scalar),
};

bool cpu_has(const char* isa) {
  if (std::strcmp(isa, "scalar") == 0) return true;
#if defined(__aarch64__)
  if (std::strcmp(isa, "neon") == 0) return true;  // Advanced SIMD is part of AArch64
#endif
#if defined(__x86_64__)
  if (std::strcmp(isa, "sse2") == 0) return true;  // SSE2 is part of x86-64
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
#endif
  return false;
}

const RowKernels* best() {
  for (const RowKernels& k : paths)
    if (cpu_has(k.name)) return &k;
  return &paths[sizeof paths / sizeof paths[0] - 1];  // scalar, which every CPU runs
}

std::atomic<const RowKernels*> current{nullptr};
std::atomic<int> requested_threads{0};  // 0: the machine's cores

int machine_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace

const RowKernels* kernels_for(const char* isa) {
  if (isa == nullptr || isa[0] == '\0') return best();
  for (const RowKernels& k : paths)
    if (std::strcmp(k.name, isa) == 0) return cpu_has(isa) ? &k : nullptr;
  return nullptr;
}

const RowKernels& kernels() {
  const RowKernels* k = current.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = best();
    current.store(k, std::memory_order_release);
  }
  return *k;
}

int num_threads() {
  const int n = requested_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  static const int cores = machine_cores();
  return cores;
}

int threads_for(int64_t rows, int64_t elements) {
  constexpr int64_t kPerThread = int64_t{1} << 16;
  int64_t t = elements / kPerThread;
  if (t > num_threads()) t = num_threads();
  if (t > rows) t = rows;
  return t < 1 ? 1 : static_cast<int>(t);
}

#if defined(_OPENMP)
int omp_thread_index() { return omp_get_thread_num(); }
int omp_thread_count() { return omp_get_num_threads(); }
#endif

}  // namespace rlhf

extern "C" void rlhf_set_num_threads(int n) { rlhf::requested_threads.store(n > 0 ? n : 0); }

extern "C" int rlhf_get_num_threads(void) { return rlhf::num_threads(); }

extern "C" const char* rlhf_cpu_isa(void) { return rlhf::kernels().name; }

extern "C" rlhf_status rlhf_cpu_force_isa(const char* isa) {
  const rlhf::RowKernels* k = rlhf::kernels_for(isa);
  if (k == nullptr)
    return rlhf::fail(RLHF_ERR_PARAM, "cpu_force_isa: '%s' is not available here (known: avx512, avx2, sse2, neon, scalar)", isa);
  rlhf::current.store(k, std::memory_order_release);
  return rlhf::ok();
}

extern "C" int rlhf_cpu_isa_supported(const char* isa) {
  return isa != nullptr && isa[0] != '\0' && rlhf::kernels_for(isa) != nullptr ? 1 : 0;
}
