// Host-side plumbing shared by every CUDA kernel file: stream handles with their device error flag,
// the thread-local error message, cached device properties and the row-kernel tuning knobs.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "rlhf/kernels_cuda.h"

namespace rlhf_cuda {

// What a `void* stream` of the C ABI points to. `flag` is mapped pinned host memory: a kernel that
// finds a bad label or rank stores 1 there, and rlhf_cuda_stream_synchronize reads it after the wait.
struct StreamHandle {
  cudaStream_t stream = nullptr;
  bool owned = false;
  int* flag = nullptr;        // host address
  int* deviceFlag = nullptr;  // the same memory as the device sees it
};

struct DeviceInfo {
  int device = 0;
  int sms = 1;
  int major = 0;
  int smemOptin = 48 * 1024;  // largest dynamic shared memory a block may ask for
  int peakGBps = 0;            // peak memory bandwidth from the memory clock and bus width (0: unknown)
};

struct RowTuning {
  int maxCluster = 0;  // 0: automatic (kAutoLayouts in rows.cuh; the fields below are ignored)
  int keepRows = 1;     // where the gradient pass finds a row (Keep): 0 global memory, 1 shared memory,
                        // 2 registers, 3 registers with the next row loaded ahead
  int threads = 512;    // block size of the no-cache layout (512 or 256)
  int unroll = 2;       // steps loaded before the first is used (2 or 4)
  int streaming = -1;   // evict-first hints on the gradient pass: -1 or 1 on, 0 off
  int blocksPerSm = 0;  // > 0: a persistent grid of that many blocks per multiprocessor; 0: a block per row
  int splitRows = 0;    // > 0: every row split over a cluster of this many blocks; 0: automatic
};

// Records the message for rlhf_cuda_last_error and returns the status.
rlhf_status fail(rlhf_status status, const char* fmt, ...);
// RLHF_OK, or RLHF_ERR_DEVICE with the CUDA error's name and `what`.
rlhf_status check(cudaError_t err, const char* what);

// The handle for `stream` (NULL: the current device's default handle) in *handle; otherwise the status
// (and message) saying why there is none: CUDA cannot be used here, or `stream` is not a live handle.
rlhf_status resolve(void* stream, StreamHandle** handle);
const DeviceInfo* deviceInfo();
RowTuning rowTuning();
void setLastLaunch(const char* description);

// kernel<<<grid, block, smem, stream>>>(args...), written as a call so that the host emulator the
// tests compile these sources with (tests/cuda_emulator) takes it too. Returns the launch's error.
template <class... Params, class... Args>
cudaError_t launchKernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                         Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace rlhf_cuda

namespace rlhf_cuda {
// Every pointer given is aligned to its element type (null ones pass: they are checked apart). A
// misaligned device access would be a sticky error that ends the context (cudaErrorMisalignedAddress).
template <class... T>
inline bool alignedToTypes(const T*... p) {
  return ((reinterpret_cast<uintptr_t>(p) % alignof(T) == 0) && ...);
}
}  // namespace rlhf_cuda

// Argument checks shared by the entry points (the CPU functions make the same checks first).
#define RLHF_CUDA_REQUIRE(cond, status, ...)                 \
  do {                                                       \
    if (!(cond)) return ::rlhf_cuda::fail(status, __VA_ARGS__); \
  } while (0)
// The pointers given (null ones pass) are aligned to their element types (alignedToTypes).
#define RLHF_CUDA_REQUIRE_ALIGNED(name, ...)                                      \
  RLHF_CUDA_REQUIRE(::rlhf_cuda::alignedToTypes(__VA_ARGS__), RLHF_ERR_SHAPE, \
                    "%s: a pointer is not aligned to its element type", name)
