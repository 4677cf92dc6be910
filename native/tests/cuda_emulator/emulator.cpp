// The host emulator's runtime: devices, memory, streams, and launches whose blocks run as fibers
// (see cuda_runtime.h for what is emulated and what is not).
#include "cuda_runtime.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cooperative_groups.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMULATOR_ASAN 1
#else
#define EMULATOR_ASAN 0
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

constexpr size_t kMaxSharedBytes = 227 * 1024;  // an H100's opt-in limit per block

// The dynamic shared memory of the row kernels (`extern __shared__ float4 dynamicShared[]` inside
// rlhf_cuda::rowKernel, src/cuda/rows.cuh): one per emulated block, as every __shared__ variable.
namespace rlhf_cuda {
thread_local float4 dynamicShared[kMaxSharedBytes / sizeof(float4)];
}

namespace cuda_emulator {
namespace {

[[noreturn]] void fatal(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "cuda emulator: ");
  std::vfprintf(stderr, fmt, args);
  std::fprintf(stderr, "\n");
  va_end(args);
  std::fflush(stderr);
  std::abort();
}

thread_local cudaError_t lastError = cudaSuccess;
cudaError_t record(cudaError_t err) {
  if (err != cudaSuccess) lastError = err;
  return err;
}

// ---- the device -----------------------------------------------------------------------------------
struct Device {
  int major = 9, minor = 0, sms = 4;
  int maxCluster = 16;  // larger clusters cannot be co-scheduled (occupancy 0, the launch fails)
  std::string name;
};

const Device& device() {
  static const Device d = [] {
    Device dev;
    if (const char* spec = std::getenv("RLHF_CUDA_EMULATOR_DEVICE")) {
      int cc = 0, sms = 0, cluster = 0;
      const int got = std::sscanf(spec, "sm_%d:%d:%d", &cc, &sms, &cluster);
      if (got < 1 || cc < 50 || cc > 200 || (got >= 2 && (sms < 1 || sms > 1024)) || (got == 3 && (cluster < 1 || cluster > 16)))
        fatal("RLHF_CUDA_EMULATOR_DEVICE=%s: expected sm_<major><minor>[:<multiprocessors>[:<largest cluster>]], e.g. sm_90:4", spec);
      dev.major = cc / 10;
      dev.minor = cc % 10;
      if (got >= 2) dev.sms = sms;
      if (got == 3) dev.maxCluster = cluster;
    }
    dev.name = "rlhf-ts CUDA emulator";
    return dev;
  }();
  return d;
}

// ---- memory: guard zones around every allocation --------------------------------------------------
constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuardByte = 0xA5;

struct Allocation {
  char* base;  // what aligned_alloc returned
  size_t bytes;
};
std::mutex memoryMutex;
std::map<char*, Allocation> allocations;  // by the pointer handed out

bool guardsIntact(char* p, const Allocation& a) {
  for (size_t i = 0; i < kGuardBytes; i++)
    if (static_cast<unsigned char>(p[-1 - int64_t(i)]) != kGuardByte ||
        static_cast<unsigned char>(p[a.bytes + i]) != kGuardByte)
      return false;
  return true;
}

template <class F>
void withGuardsReadable(char* p, const Allocation& a, F&& f) {
  ASAN_UNPOISON_MEMORY_REGION(p - kGuardBytes, kGuardBytes);
  ASAN_UNPOISON_MEMORY_REGION(p + a.bytes, kGuardBytes);
  f();
  ASAN_POISON_MEMORY_REGION(p - kGuardBytes, kGuardBytes);
  ASAN_POISON_MEMORY_REGION(p + a.bytes, kGuardBytes);
}

void checkAllGuards(const char* when) {
  std::lock_guard<std::mutex> lock(memoryMutex);
  for (auto& [p, a] : allocations) {
    bool ok = true;
    withGuardsReadable(p, a, [&] { ok = guardsIntact(p, a); });
    if (!ok) fatal("%s: a write outside the device buffer %p of %zu bytes", when, static_cast<void*>(p), a.bytes);
  }
}

// Whether [p, p + bytes) lies inside one device allocation.
bool onDevice(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(memoryMutex);
  auto it = allocations.upper_bound(static_cast<char*>(const_cast<void*>(p)));
  if (it == allocations.begin()) return false;
  --it;
  const char* c = static_cast<const char*>(p);
  return c >= it->first && c + bytes <= it->first + it->second.bytes;
}

// ---- launches -------------------------------------------------------------------------------------
struct KernelAttributes {
  int maxDynamicShared = 48 * 1024;
  bool nonPortableClusters = false;
};
std::mutex attributeMutex;
std::map<const void*, KernelAttributes> attributes;

KernelAttributes attributesOf(const void* kernel) {
  std::lock_guard<std::mutex> lock(attributeMutex);
  auto it = attributes.find(kernel);
  return it == attributes.end() ? KernelAttributes{} : it->second;
}

// A barrier of some of a block's fibers.
struct Fiber;
struct Barrier {
  int expected = 0;
  int arrived = 0;
  std::vector<Fiber*> waiting;
};

struct Fiber {
  void* sp = nullptr;  // its saved stack pointer while it is switched out
  dim3 thread;
  unsigned index = 0;  // linear thread index
  int phase = 0;       // which shuffle slots this thread's next shuffle uses
  bool done = false;
  const char* waitingAt = nullptr;
  char* stack = nullptr;
  size_t stackBytes = 0;
  void* fakeStack = nullptr;  // AddressSanitizer's fiber bookkeeping
};

// The blocks of one cluster run at once, one OS thread each.
struct Cluster {
  unsigned size = 1;
  std::vector<const char*> anchors;  // each block thread's tlsAnchor
  std::mutex mutex;
  std::condition_variable cv;
  unsigned arrived = 0;
  uint64_t generation = 0;

  void arriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex);
    const uint64_t gen = generation;
    if (++arrived == size) {
      arrived = 0;
      generation++;
      cv.notify_all();
      return;
    }
    if (!cv.wait_for(lock, std::chrono::seconds(120), [&] { return generation != gen; }))
      fatal("cluster.sync: a block of the cluster never arrived (a block left early, or one deadlocked)");
  }
};

struct Block {
  const std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers;
  std::deque<Fiber*> runnable;
  void* schedulerSp = nullptr;
  const void* schedulerStack = nullptr;  // the OS thread's stack, for AddressSanitizer
  size_t schedulerStackBytes = 0;
  Fiber* current = nullptr;
  Barrier all;      // __syncthreads
  Barrier cluster;  // cluster.sync
  std::vector<Barrier> warps;
  std::vector<uint64_t> slots[2];
  Cluster* group = nullptr;
  unsigned rank = 0;
  int live = 0;
  // Threads start from the last, and those a barrier releases run before the others (a warp runs
  // ahead of its block as far as its own barriers let it).
  bool reversed = false;
};

thread_local Block* currentBlock = nullptr;
thread_local char tlsAnchor;  // this OS thread's copy marks where its thread_local variables are

Block& block() {
  if (!currentBlock || !currentBlock->current) fatal("device code ran outside a kernel launch");
  return *currentBlock;
}

// Fiber stacks, one set per block that runs at once (a cluster's rank), reused across launches.
constexpr size_t kStackBytes = 256 * 1024;
std::vector<std::vector<char*>> stackSets;

char* stackFor(unsigned rank, unsigned thread) {
  if (stackSets.size() <= rank) stackSets.resize(rank + 1);
  std::vector<char*>& set = stackSets[rank];
  while (set.size() <= thread) {
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) fatal("could not map a fiber stack");
    mprotect(p, page, PROT_NONE);  // a guard page below the stack
    set.push_back(static_cast<char*>(p) + page);
  }
  return set[thread];
}

// Saves the callee-saved registers on the current stack, stores the stack pointer in *save, and
// resumes the context whose stack pointer is `to` (a block switches thousands of times per row:
// swapcontext's signal-mask system call would cost more than the kernels).
extern "C" void rlhf_emulator_switch(void** save, void* to);
#if defined(__x86_64__)
asm(R"(
  .text
  .globl rlhf_emulator_switch
  .hidden rlhf_emulator_switch
  .type rlhf_emulator_switch, @function
rlhf_emulator_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rlhf_emulator_switch, .-rlhf_emulator_switch
)");
#elif defined(__aarch64__)
asm(R"(
  .text
  .globl rlhf_emulator_switch
  .hidden rlhf_emulator_switch
  .type rlhf_emulator_switch, %function
rlhf_emulator_switch:
  sub sp, sp, #176
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #176
  ret
  .size rlhf_emulator_switch, .-rlhf_emulator_switch
)");
#else
#error "the CUDA emulator switches fibers on x86-64 and AArch64 only"
#endif

void fiberMain();

// A fresh fiber's stack as rlhf_emulator_switch leaves one: saved registers, then fiberMain as the
// return address, at the alignment of a function entry.
void* initialStack(char* stack, size_t bytes) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
#if defined(__x86_64__)
  auto* words = reinterpret_cast<uintptr_t*>(top);
  words[-1] = 0;                                          // fiberMain's own return address (never used)
  words[-2] = reinterpret_cast<uintptr_t>(&fiberMain);    // popped by `ret`
  for (int i = 3; i <= 8; i++) words[-i] = 0;             // rbp, rbx, r12–r15
  return words - 8;
#else
  auto* words = reinterpret_cast<uintptr_t*>(top - 176);
  std::memset(words, 0, 176);
  words[11] = reinterpret_cast<uintptr_t>(&fiberMain);    // x30, the link register `ret` jumps to
  return words;
#endif
}

void enterFiber(Block& b, Fiber& f) {
  b.current = &f;
  threadIdx = f.thread;
#if EMULATOR_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, f.stackBytes);
  rlhf_emulator_switch(&b.schedulerSp, f.sp);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  rlhf_emulator_switch(&b.schedulerSp, f.sp);
#endif
}

void leaveFiber(Block& b, Fiber& f) {
#if EMULATOR_ASAN
  __sanitizer_start_switch_fiber(f.done ? nullptr : &f.fakeStack, b.schedulerStack, b.schedulerStackBytes);
  rlhf_emulator_switch(&f.sp, b.schedulerSp);
  __sanitizer_finish_switch_fiber(f.fakeStack, nullptr, nullptr);
#else
  rlhf_emulator_switch(&f.sp, b.schedulerSp);
#endif
}

void fiberMain() {
  Block& b = *currentBlock;
  Fiber& f = *b.current;
#if EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.schedulerStack, &b.schedulerStackBytes);
#endif
  (*b.body)();
  f.done = true;
  b.live--;
  leaveFiber(b, f);
  fatal("a finished thread was resumed");
}

// Arrives at `bar`; the last to arrive runs `onOpen` (if any) and releases the others.
void wait(Block& b, Barrier& bar, const char* what, void (*onOpen)(Block&) = nullptr) {
  Fiber& f = *b.current;
  if (++bar.arrived < bar.expected) {
    bar.waiting.push_back(&f);
    f.waitingAt = what;
    leaveFiber(b, f);
    f.waitingAt = nullptr;
    return;
  }
  bar.arrived = 0;
  if (onOpen) onOpen(b);
  if (b.reversed) {
    b.runnable.insert(b.runnable.begin(), bar.waiting.rbegin(), bar.waiting.rend());
  } else {
    b.runnable.insert(b.runnable.end(), bar.waiting.begin(), bar.waiting.end());
  }
  bar.waiting.clear();
}

struct Place {
  dim3 block, blockDim, gridDim;
};

void runBlock(Block& b, const Place& where, size_t smem) {
  currentBlock = &b;
  blockIdx = where.block;
  blockDim = where.blockDim;
  gridDim = where.gridDim;
  const unsigned threads = where.blockDim.x * where.blockDim.y * where.blockDim.z;
  b.fibers.assign(threads, Fiber{});
  b.all.expected = int(threads);
  b.cluster.expected = int(threads);
  b.warps.assign((threads + 31) / 32, Barrier{});
  for (unsigned w = 0; w < b.warps.size(); w++) b.warps[w].expected = int(std::min(32u, threads - 32 * w));
  b.slots[0].assign(b.warps.size() * 32, 0);
  b.slots[1].assign(b.warps.size() * 32, 0);
  b.live = int(threads);

  // Shared memory holds garbage on a GPU: NaN here; past the launch's size it is not there at all.
  char* shared = reinterpret_cast<char*>(rlhf_cuda::dynamicShared);
  std::memset(shared, 0xff, smem);
  ASAN_POISON_MEMORY_REGION(shared + smem, kMaxSharedBytes - smem);

  for (unsigned i = 0; i < threads; i++) {
    Fiber& f = b.fibers[i];
    f.index = i;
    f.thread = dim3(i % where.blockDim.x, (i / where.blockDim.x) % where.blockDim.y,
                    i / (where.blockDim.x * where.blockDim.y));
    f.stack = stackFor(b.rank, i);
    f.stackBytes = kStackBytes;
    f.sp = initialStack(f.stack, f.stackBytes);
    if (b.reversed) {
      b.runnable.push_front(&f);
    } else {
      b.runnable.push_back(&f);
    }
  }
  while (!b.runnable.empty()) {
    Fiber* f = b.runnable.front();
    b.runnable.pop_front();
    enterFiber(b, *f);
  }
  if (b.live > 0) {
    std::string waits;
    for (const Fiber& f : b.fibers)
      if (!f.done && waits.size() < 600)
        waits += " thread " + std::to_string(f.index) + " at " + (f.waitingAt ? f.waitingAt : "?") + ";";
    fatal("block (%u, %u, %u): %d of %u threads wait at a barrier that the others never reach:%s", where.block.x,
          where.block.y, where.block.z, b.live, threads, waits.c_str());
  }
  ASAN_UNPOISON_MEMORY_REGION(shared + smem, kMaxSharedBytes - smem);
  b.current = nullptr;
  currentBlock = nullptr;
}

std::mutex launchMutex;  // one launch at a time (streams are synchronous here)
// Every other launch runs a block's threads in another order (Block::reversed), so that a missing
// barrier shows whichever thread reads what another one writes.
uint64_t launches = 0;

}  // namespace

// ---- device-side entry points -------------------------------------------------------------------
void syncThreads() {
  Block& b = block();
  wait(b, b.all, "__syncthreads");
}

uint64_t shuffle(unsigned mask, uint64_t value, int lane, bool xorLane, int width) {
  Block& b = block();
  Fiber& f = *b.current;
  if (mask != 0xffffffffu || width != 32) fatal("only whole-warp shuffles are emulated (mask %#x, width %d)", mask, width);
  const unsigned warp = f.index / 32, me = f.index % 32;
  Barrier& bar = b.warps[warp];
  if (bar.expected != 32) fatal("a full-mask shuffle in a warp of %d threads", bar.expected);
  const unsigned src = (xorLane ? me ^ unsigned(lane) : unsigned(lane)) & 31u;
  // Two slot sets, alternating: a lane can only write a set again after every lane has passed the
  // next shuffle's barrier, that is, after all have read this one.
  std::vector<uint64_t>& slots = b.slots[f.phase];
  slots[f.index] = value;
  wait(b, bar, "a warp shuffle");
  f.phase ^= 1;
  return slots[warp * 32 + src];
}

void clusterSync() {
  Block& b = block();
  wait(b, b.cluster, "cluster.sync", [](Block& blk) {
    if (blk.group) blk.group->arriveAndWait();
  });
}

unsigned clusterRank() { return block().rank; }
unsigned clusterSize() { return block().group ? block().group->size : 1; }

void* mapSharedRank(void* p, unsigned rank) {
  Block& b = block();
  const unsigned size = b.group ? b.group->size : 1;
  if (rank >= size) fatal("map_shared_rank(%u) in a cluster of %u blocks", rank, size);
  if (!b.group) return p;
  return const_cast<char*>(b.group->anchors[rank]) + (static_cast<char*>(p) - &tlsAnchor);
}

cudaError_t setAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  std::lock_guard<std::mutex> lock(attributeMutex);
  KernelAttributes& a = attributes[kernel];
  switch (attr) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || size_t(value) > kMaxSharedBytes) return record(cudaErrorInvalidValue);
      a.maxDynamicShared = value;
      return cudaSuccess;
    case cudaFuncAttributeNonPortableClusterSizeAllowed:
      if (device().major < 9) return record(cudaErrorNotSupported);
      a.nonPortableClusters = value != 0;
      return cudaSuccess;
  }
  return record(cudaErrorInvalidValue);
}

namespace {

dim3 clusterDims(const cudaLaunchConfig_t& cfg) {
  dim3 c(1, 1, 1);
  for (unsigned i = 0; i < cfg.numAttrs; i++)
    if (cfg.attrs[i].id == cudaLaunchAttributeClusterDimension)
      c = dim3(cfg.attrs[i].val.clusterDim.x, cfg.attrs[i].val.clusterDim.y, cfg.attrs[i].val.clusterDim.z);
  return c;
}

// The checks a driver makes before it runs a launch.
cudaError_t validate(const cudaLaunchConfig_t& cfg, const KernelAttributes& a) {
  const dim3 g = cfg.gridDim, t = cfg.blockDim, c = clusterDims(cfg);
  const uint64_t threads = uint64_t(t.x) * t.y * t.z;
  if (threads == 0 || threads > 1024 || t.z > 64) return cudaErrorInvalidConfiguration;
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return cudaErrorInvalidConfiguration;
  if (cfg.dynamicSmemBytes > size_t(a.maxDynamicShared)) return cudaErrorInvalidValue;
  const uint64_t clusterBlocks = uint64_t(c.x) * c.y * c.z;
  if (clusterBlocks == 0) return cudaErrorInvalidValue;
  if (clusterBlocks > 1) {
    if (device().major < 9) return cudaErrorNotSupported;
    if (clusterBlocks > (a.nonPortableClusters ? 16u : 8u)) return cudaErrorInvalidValue;
    if (g.x % c.x || g.y % c.y || g.z % c.z) return cudaErrorInvalidValue;
    if (clusterBlocks > uint64_t(device().maxCluster)) return cudaErrorLaunchOutOfResources;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t maxActiveClusters(int* clusters, const void* kernel, const cudaLaunchConfig_t& cfg) {
  if (!clusters) return record(cudaErrorInvalidValue);
  const dim3 c = clusterDims(cfg);
  const int blocks = int(c.x * c.y * c.z);
  if (blocks > device().maxCluster) {  // valid, but never co-scheduled
    *clusters = 0;
    return cudaSuccess;
  }
  const cudaError_t err = validate(cfg, attributesOf(kernel));
  if (err != cudaSuccess) return record(err);
  *clusters = std::max(1, device().sms / blocks);
  return cudaSuccess;
}

cudaError_t launch(const cudaLaunchConfig_t& cfg, const void* kernel, const std::function<void()>& body) {
  const cudaError_t err = validate(cfg, attributesOf(kernel));
  if (err != cudaSuccess) return record(err);
  std::lock_guard<std::mutex> lock(launchMutex);
  const dim3 g = cfg.gridDim, c = clusterDims(cfg);
  const unsigned size = c.x * c.y * c.z;
  const bool reversed = launches++ % 2 == 1;
  // Clusters one after another (a GPU need not run two at once); the blocks of one at once.
  for (unsigned cz = 0; cz < g.z; cz += c.z)
    for (unsigned cy = 0; cy < g.y; cy += c.y)
      for (unsigned cx = 0; cx < g.x; cx += c.x) {
        auto placeOf = [&](unsigned r) {
          Place p;
          p.block = dim3(cx + r % c.x, cy + (r / c.x) % c.y, cz + r / (c.x * c.y));
          p.blockDim = cfg.blockDim;
          p.gridDim = g;
          return p;
        };
        if (size == 1) {
          Block b;
          b.body = &body;
          b.reversed = reversed;
          runBlock(b, placeOf(0), cfg.dynamicSmemBytes);
          continue;
        }
        Cluster group;
        group.size = size;
        group.anchors.assign(size, nullptr);
        std::vector<std::unique_ptr<Block>> blocks;
        for (unsigned r = 0; r < size; r++) {
          blocks.push_back(std::make_unique<Block>());
          blocks[r]->body = &body;
          blocks[r]->group = &group;
          blocks[r]->rank = r;
          blocks[r]->reversed = reversed;
          stackFor(r, cfg.blockDim.x * cfg.blockDim.y * cfg.blockDim.z - 1);  // before the threads start
        }
        // Every block thread records where its thread_local variables are before any block runs.
        Cluster ready;
        ready.size = size;
        std::vector<std::thread> threads;
        for (unsigned r = 0; r < size; r++)
          threads.emplace_back([&, r] {
            group.anchors[r] = &tlsAnchor;
            ready.arriveAndWait();
            runBlock(*blocks[r], placeOf(r), cfg.dynamicSmemBytes);
          });
        for (std::thread& t : threads) t.join();
      }
  checkAllGuards("after a kernel");
  return cudaSuccess;
}

}  // namespace cuda_emulator

using namespace cuda_emulator;

// ---- runtime API ----------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int d) {
  if (d != 0) return record(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "%s", device().name.c_str());
  prop->major = device().major;
  prop->minor = device().minor;
  prop->multiProcessorCount = device().sms;
  prop->totalGlobalMem = size_t(1) << 30;
  prop->sharedMemPerBlockOptin = kMaxSharedBytes;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int d) {
  if (d != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = device().sms; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = device().major; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(kMaxSharedBytes); return cudaSuccess;
    // The memory of an H100 SXM (3.35 TB/s peak), or an A100's (2.0 TB/s) for sm_80: the planner's
    // slower-memory layouts then run here too.
    case cudaDevAttrMemoryClockRate: *value = device().major >= 9 ? 2619000 : 1593000; return cudaSuccess;
    case cudaDevAttrGlobalMemoryBusWidth: *value = 5120; return cudaSuccess;
  }
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  const cudaError_t err = lastError;
  lastError = cudaSuccess;
  return err;
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t err) { return cudaGetErrorName(err); }

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  const size_t total = (kGuardBytes + bytes + kGuardBytes + 255) / 256 * 256;
  char* base = static_cast<char*>(std::aligned_alloc(256, total));
  if (!base) return record(cudaErrorMemoryAllocation);
  char* p = base + kGuardBytes;
  std::memset(base, kGuardByte, total);
  std::memset(p, 0xff, bytes);  // NaN: a GPU's fresh memory holds whatever was there
  const Allocation a{base, bytes};
  ASAN_POISON_MEMORY_REGION(p - kGuardBytes, kGuardBytes);
  ASAN_POISON_MEMORY_REGION(p + bytes, kGuardBytes);
  std::lock_guard<std::mutex> lock(memoryMutex);
  allocations[p] = a;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(memoryMutex);
  auto it = allocations.find(static_cast<char*>(ptr));
  if (it == allocations.end()) return record(cudaErrorInvalidValue);
  char* p = it->first;
  const Allocation a = it->second;
  bool ok = true;
  withGuardsReadable(p, a, [&] { ok = guardsIntact(p, a); });
  if (!ok) fatal("cudaFree: a write outside the device buffer %p of %zu bytes", ptr, a.bytes);
  ASAN_UNPOISON_MEMORY_REGION(p - kGuardBytes, kGuardBytes);
  ASAN_UNPOISON_MEMORY_REGION(p + a.bytes, kGuardBytes);
  allocations.erase(it);
  std::free(a.base);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) {
  *ptr = std::calloc(1, bytes ? bytes : 1);
  return *ptr ? cudaSuccess : record(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void** d, void* host, unsigned) {
  *d = host;  // mapped memory: one address on both sides
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  const bool srcOnDevice = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool dstOnDevice = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if ((srcOnDevice && !onDevice(src, bytes)) || (dstOnDevice && !onDevice(dst, bytes)))
    return record(cudaErrorInvalidValue);
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  if (!onDevice(dst, bytes)) return record(cudaErrorInvalidValue);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

struct CUstream_st {
  unsigned flags;
};
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
