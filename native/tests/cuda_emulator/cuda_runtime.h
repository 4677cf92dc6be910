// A host emulator of the part of CUDA the kernels in src/cuda use, so that the CUDA sources run, and
// are tested, on a machine without a GPU (tests/run-cuda-emulated.sh). This directory comes first on
// the include path, so the sources' own #include <cuda_runtime.h> finds this file; g++ compiles them
// as C++ with RLHF_CUDA_EMULATOR defined.
//
// What it emulates, and how (emulator.cpp):
//   a thread block   its threads are fibers (ucontext) on one OS thread, switched only at barriers:
//                    __syncthreads, the warp barrier inside each shuffle, and cluster.sync: on even
//                    launches in thread order, each thread as far as it can; on odd ones from the last
//                    thread, and those a barrier releases first (a warp runs ahead of its block), so
//                    that a missing barrier shows whichever side it hides. A barrier some threads never reach
//                    aborts with the block's state (a real GPU would hang);
//   __shared__       thread_local, so each block (one OS thread) has its own; the dynamic part is
//                    poisoned past the launch's size under AddressSanitizer;
//   a cluster        its blocks run at once, one OS thread each; cluster.sync is a barrier across them
//                    and map_shared_rank maps a thread_local address into another block's thread;
//   device memory    host memory between guard zones that are checked after every launch (and
//                    poisoned under AddressSanitizer); fresh allocations are filled with NaN;
//   launches         synchronous, with the checks the driver makes (block size, dynamic shared memory
//                    against cudaFuncSetAttribute, cluster size, non-portable clusters, sm_90 for clusters).
// The device is chosen by RLHF_CUDA_EMULATOR_DEVICE, e.g. "sm_90:4" (default: compute capability 9.0,
// 4 multiprocessors), "sm_80:3" (no clusters) or "sm_90:4:4" (clusters of more than 4 blocks are never
// co-scheduled: occupancy 0 and the launch fails, as on a GPU whose blocks need too much of an SM).
// Not emulated: the memory model (a block's threads interleave only at barriers), timing, registers
// and occupancy, and the error of the approximate instructions (for ex2.approx.ftz online.cuh uses
// exp2f, flushing subnormals to zero as the instruction does).
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define RLHF_CUDA_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// A block-scope thread_local is static: one object per OS thread, that is, per emulated block.
#define __shared__ thread_local

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// ---- runtime types ------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNotSupported = 801,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMemoryClockRate = 36,
  cudaDevAttrGlobalMemoryBusWidth = 37,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributeNonPortableClusterSizeAllowed = 13,
};

enum cudaLaunchAttributeID { cudaLaunchAttributeClusterDimension = 4 };

struct cudaLaunchAttributeValue {
  struct {
    unsigned x, y, z;
  } clusterDim;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  cudaLaunchAttributeValue val;
};

struct cudaLaunchConfig_t {
  dim3 gridDim;
  dim3 blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned numAttrs;
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  size_t sharedMemPerBlockOptin;
};

constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaHostAllocMapped = 2;

// ---- runtime API (emulator.cpp) -------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned flags);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

namespace cuda_emulator {

void syncThreads();
// A whole-warp shuffle (mask 0xffffffff, width 32: what the kernels use; anything else aborts).
uint64_t shuffle(unsigned mask, uint64_t value, int lane, bool xorLane, int width);

cudaError_t setAttribute(const void* kernel, cudaFuncAttribute attr, int value);
cudaError_t maxActiveClusters(int* clusters, const void* kernel, const cudaLaunchConfig_t& cfg);
// Runs `body` once per thread of the grid; returns when the grid is done (or the launch's error).
cudaError_t launch(const cudaLaunchConfig_t& cfg, const void* kernel, const std::function<void()>& body);

}  // namespace cuda_emulator

// The built-in indices: per OS thread, that is, per emulated block; threadIdx is set each time the
// block's scheduler switches to a thread.
extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  return cuda_emulator::setAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

template <class T>
cudaError_t cudaOccupancyMaxActiveClusters(int* clusters, T* kernel, const cudaLaunchConfig_t* cfg) {
  return cuda_emulator::maxActiveClusters(clusters, reinterpret_cast<const void*>(kernel), *cfg);
}

// The arguments are converted to the kernel's parameter types once, as a launch copies them; each
// thread then calls the kernel with its own copies.
template <class... Params, class... Args>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* cfg, void (*kernel)(Params...), Args&&... args) {
  const std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
  return cuda_emulator::launch(*cfg, reinterpret_cast<const void*>(kernel), [&] { std::apply(kernel, params); });
}

// ---- device functions -----------------------------------------------------------------------------
inline void __syncthreads() { cuda_emulator::syncThreads(); }

template <class T>
T shuffleValue(unsigned mask, T value, int lane, bool xorLane, int width) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value, "a register-sized value");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = cuda_emulator::shuffle(mask, bits, lane, xorLane, width);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}
template <class T>
T __shfl_sync(unsigned mask, T value, int srcLane, int width = 32) {
  return shuffleValue(mask, value, srcLane, false, width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int laneMask, int width = 32) {
  return shuffleValue(mask, value, laneMask, true, width);
}

inline float __ldcs(const float* p) { return *p; }
inline float4 __ldcs(const float4* p) { return *p; }
inline void __stcs(float* p, float v) { *p = v; }
inline void __stcs(float4* p, float4 v) { *p = v; }

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline double __longlong_as_double(long long i) {
  double d;
  std::memcpy(&d, &i, sizeof d);
  return d;
}
