// The runtime half of kernels_cuda.h: availability, memory, streams and their error flags.
#include "runtime.cuh"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <cstdint>
#include <unordered_map>

namespace rlhf_cuda {
namespace {

thread_local std::string lastError;
thread_local std::string lastLaunch;

constexpr int kMaxDevices = 64;
std::mutex registryMutex;
StreamHandle* defaultHandles[kMaxDevices] = {};
// The handles rlhf_cuda_stream_create / _wrap gave out and rlhf_cuda_stream_destroy has not taken
// back: any other pointer (a destroyed handle, a raw cudaStream_t) is refused, never dereferenced.
// A handle is an id, never reused, not the StreamHandle's address: the allocator hands a freed
// address straight back, and a stale handle would then name the next stream. The ids are odd and
// tagged, so that none is CUDA's raw cudaStreamLegacy (0x1) or cudaStreamPerThread (0x2), nor an
// aligned host or device address a caller might pass by mistake.
std::unordered_map<const void*, StreamHandle*> liveHandles;
std::uintptr_t nextHandleId = sizeof(void*) == 8 ? std::uintptr_t(0x524C484600000001ull) : std::uintptr_t(0x52480001u);
DeviceInfo* infos[kMaxDevices] = {};
RowTuning tuning;

__global__ void probeKernel(int* out) { *out = 42; }

// The reason CUDA cannot be used here, or "" when it can. Computed once per process.
const std::string& unavailableReason() {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      reason = std::string("no usable CUDA driver or device (cudaGetDeviceCount: ") + cudaGetErrorName(err) + ", " +
               cudaGetErrorString(err) + ")";
      cudaGetLastError();
      return;
    }
    if (count == 0) {
      reason = "no CUDA device is visible";
      return;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      reason = "cudaGetDeviceProperties failed on device 0";
      cudaGetLastError();
      return;
    }
    if (prop.major < 8) {
      reason = std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
               std::to_string(prop.minor) + "; the kernels are built for sm_80 and newer";
      return;
    }
    // A real launch proves that the driver can load this library's device code.
    int* probe = nullptr;
    int value = 0;
    err = cudaMalloc(&probe, sizeof(int));
    if (err == cudaSuccess) {
      err = launchKernel(probeKernel, 1, 1, 0, nullptr, probe);
      if (err == cudaSuccess) err = cudaMemcpy(&value, probe, sizeof(int), cudaMemcpyDeviceToHost);
      cudaFree(probe);
    }
    if (err != cudaSuccess || value != 42) {
      reason = std::string("a probe kernel failed on ") + prop.name + ": " + cudaGetErrorString(err);
      cudaGetLastError();
    }
  });
  return reason;
}

int currentDevice() {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return 0;
  return device;
}

StreamHandle* newHandle(cudaStream_t stream, bool owned) {
  auto* h = new StreamHandle;
  h->stream = stream;
  h->owned = owned;
  if (cudaHostAlloc(reinterpret_cast<void**>(&h->flag), sizeof(int), cudaHostAllocMapped) != cudaSuccess ||
      cudaHostGetDevicePointer(reinterpret_cast<void**>(&h->deviceFlag), h->flag, 0) != cudaSuccess) {
    cudaGetLastError();
    if (h->flag) cudaFreeHost(h->flag);
    delete h;
    return nullptr;
  }
  *h->flag = 0;
  return h;
}

// A new handle given out to the caller (create / wrap; null: newHandle failed), registered so that
// resolve accepts it.
rlhf_status giveOut(StreamHandle* h, void** stream, const char* what) {
  if (!h) return fail(RLHF_ERR_DEVICE, "%s: could not allocate the error flag", what);
  try {
    std::lock_guard<std::mutex> lock(registryMutex);
    void* id = reinterpret_cast<void*>(nextHandleId);
    nextHandleId += 2;
    liveHandles.emplace(id, h);
    *stream = id;
  } catch (...) {
    if (h->owned) cudaStreamDestroy(h->stream);
    cudaFreeHost(h->flag);
    delete h;
    return fail(RLHF_ERR_DEVICE, "%s: out of memory", what);
  }
  return RLHF_OK;
}

// RLHF_OK when CUDA can be used here (and the default handle exists), else why not.
rlhf_status available() {
  StreamHandle* h;
  return resolve(nullptr, &h);
}

}  // namespace

rlhf_status fail(rlhf_status status, const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  lastError = buf;
  return status;
}

rlhf_status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return RLHF_OK;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  return fail(RLHF_ERR_DEVICE, "%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

rlhf_status resolve(void* stream, StreamHandle** handle) {
  *handle = nullptr;
  const std::string& reason = unavailableReason();
  if (!reason.empty()) return fail(RLHF_ERR_UNAVAILABLE, "CUDA is unavailable: %s", reason.c_str());
  std::lock_guard<std::mutex> lock(registryMutex);
  if (stream) {
    const auto live = liveHandles.find(stream);
    if (live == liveHandles.end())
      return fail(RLHF_ERR_PARAM, "%p is not a live stream handle of this library (destroyed, or not from "
                                  "rlhf_cuda_stream_create / rlhf_cuda_stream_wrap)", stream);
    *handle = live->second;
    return RLHF_OK;
  }
  const int device = currentDevice();
  if (!defaultHandles[device]) defaultHandles[device] = newHandle(nullptr, false);
  if (!defaultHandles[device]) return fail(RLHF_ERR_DEVICE, "could not allocate the error flag of the default stream");
  *handle = defaultHandles[device];
  return RLHF_OK;
}

const DeviceInfo* deviceInfo() {
  const int device = currentDevice();
  std::lock_guard<std::mutex> lock(registryMutex);
  if (!infos[device]) {
    auto* info = new DeviceInfo;
    info->device = device;
    cudaDeviceGetAttribute(&info->sms, cudaDevAttrMultiProcessorCount, device);
    cudaDeviceGetAttribute(&info->major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&info->smemOptin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    int memoryKHz = 0, busBits = 0;  // double data rate: two transfers of the bus per clock
    if (cudaDeviceGetAttribute(&memoryKHz, cudaDevAttrMemoryClockRate, device) == cudaSuccess &&
        cudaDeviceGetAttribute(&busBits, cudaDevAttrGlobalMemoryBusWidth, device) == cudaSuccess)
      info->peakGBps = int(2.0 * memoryKHz * 1e3 * (busBits / 8) / 1e9);
    cudaGetLastError();
    if (info->sms < 1) info->sms = 1;
    infos[device] = info;
  }
  return infos[device];
}

RowTuning rowTuning() {
  std::lock_guard<std::mutex> lock(registryMutex);
  return tuning;
}

void setLastLaunch(const char* description) { lastLaunch = description; }

}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" {

int rlhf_cuda_available(char* reason, size_t reason_len) {
  const std::string& why = unavailableReason();
  if (reason && reason_len > 0) {
    std::strncpy(reason, why.c_str(), reason_len - 1);
    reason[reason_len - 1] = '\0';
  }
  return why.empty() ? 1 : 0;
}

int rlhf_cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

rlhf_status rlhf_cuda_set_device(int device) {
  if (rlhf_status st = available()) return st;
  RLHF_CUDA_REQUIRE(device >= 0 && device < rlhf_cuda_device_count() && device < kMaxDevices, RLHF_ERR_PARAM,
                    "device %d does not exist", device);
  return check(cudaSetDevice(device), "cudaSetDevice");
}

rlhf_status rlhf_cuda_device_name(char* out, size_t out_len) {
  RLHF_CUDA_REQUIRE(out && out_len > 0, RLHF_ERR_SHAPE, "device_name: null buffer");
  if (rlhf_status st = available()) return st;
  cudaDeviceProp prop;
  const rlhf_status st = check(cudaGetDeviceProperties(&prop, currentDevice()), "cudaGetDeviceProperties");
  if (st != RLHF_OK) return st;
  std::snprintf(out, out_len, "%s, sm_%d%d, %d SMs, %.1f GiB", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0);
  return RLHF_OK;
}

const char* rlhf_cuda_last_error(void) { return lastError.c_str(); }
const char* rlhf_cuda_last_launch(void) { return lastLaunch.c_str(); }

void rlhf_cuda_set_row_tuning(int max_cluster, int cache_rows) {
  rlhf_cuda_set_row_schedule(max_cluster, cache_rows, 0, 0, -1, 0, 0);
}

void rlhf_cuda_set_row_schedule(int max_cluster, int cache_rows, int threads, int unroll, int streaming,
                                int blocks_per_sm, int split_rows) {
  std::lock_guard<std::mutex> lock(registryMutex);
  tuning.maxCluster = max_cluster < 0 ? 0 : max_cluster;
  tuning.keepRows = cache_rows <= 0 ? 0 : cache_rows >= 3 ? 3 : cache_rows;
  tuning.threads = threads > 0 ? threads : 512;
  tuning.unroll = unroll > 0 ? unroll : 2;
  tuning.streaming = streaming < 0 ? -1 : (streaming > 0 ? 1 : 0);
  tuning.blocksPerSm = blocks_per_sm > 0 ? blocks_per_sm : 0;
  tuning.splitRows = split_rows > 0 ? split_rows : 0;
}

rlhf_status rlhf_cuda_malloc(void** ptr, size_t bytes) {
  RLHF_CUDA_REQUIRE(ptr, RLHF_ERR_SHAPE, "malloc: null result pointer");
  *ptr = nullptr;
  if (rlhf_status st = available()) return st;
  return check(cudaMalloc(ptr, bytes > 0 ? bytes : 1), "cudaMalloc");
}

rlhf_status rlhf_cuda_free(void* ptr) {
  if (!ptr) return RLHF_OK;
  return check(cudaFree(ptr), "cudaFree");
}

static rlhf_status copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, void* stream,
                        const char* what) {
  RLHF_CUDA_REQUIRE(bytes == 0 || (dst && src), RLHF_ERR_SHAPE, "%s: null pointer", what);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  if (bytes == 0) return RLHF_OK;
  return check(cudaMemcpyAsync(dst, src, bytes, kind, h->stream), what);
}

rlhf_status rlhf_cuda_memcpy_htod(void* dst, const void* src, size_t bytes, void* stream) {
  return copy(dst, src, bytes, cudaMemcpyHostToDevice, stream, "memcpy_htod");
}
rlhf_status rlhf_cuda_memcpy_dtoh(void* dst, const void* src, size_t bytes, void* stream) {
  return copy(dst, src, bytes, cudaMemcpyDeviceToHost, stream, "memcpy_dtoh");
}
rlhf_status rlhf_cuda_memcpy_dtod(void* dst, const void* src, size_t bytes, void* stream) {
  return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, stream, "memcpy_dtod");
}

rlhf_status rlhf_cuda_memset(void* dst, int value, size_t bytes, void* stream) {
  RLHF_CUDA_REQUIRE(bytes == 0 || dst, RLHF_ERR_SHAPE, "memset: null pointer");
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  if (bytes == 0) return RLHF_OK;
  return check(cudaMemsetAsync(dst, value, bytes, h->stream), "memset");
}

rlhf_status rlhf_cuda_stream_create(void** stream) {
  RLHF_CUDA_REQUIRE(stream, RLHF_ERR_SHAPE, "stream_create: null result pointer");
  *stream = nullptr;
  if (rlhf_status st = available()) return st;
  cudaStream_t s = nullptr;
  const rlhf_status st = check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  if (st != RLHF_OK) return st;
  StreamHandle* h = newHandle(s, true);
  if (!h) cudaStreamDestroy(s);
  return giveOut(h, stream, "stream_create");
}

rlhf_status rlhf_cuda_stream_wrap(void* cuda_stream, void** stream) {
  RLHF_CUDA_REQUIRE(stream, RLHF_ERR_SHAPE, "stream_wrap: null result pointer");
  *stream = nullptr;
  if (rlhf_status st = available()) return st;
  return giveOut(newHandle(static_cast<cudaStream_t>(cuda_stream), false), stream, "stream_wrap");
}

rlhf_status rlhf_cuda_stream_synchronize(void* stream) {
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  const rlhf_status st = check(cudaStreamSynchronize(h->stream), "cudaStreamSynchronize");
  if (st != RLHF_OK) return st;
  if (*reinterpret_cast<volatile int*>(h->flag) != 0) {
    *reinterpret_cast<volatile int*>(h->flag) = 0;
    return fail(RLHF_ERR_INDEX,
                "a label outside [0, v) that is not ignore_index, or a rank outside [-1, k), was found on the "
                "device (the outputs of its row or prompt are NaN)");
  }
  return RLHF_OK;
}

rlhf_status rlhf_cuda_stream_destroy(void* stream) {
  if (!stream) return RLHF_OK;
  StreamHandle* h;
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    const auto live = liveHandles.find(stream);
    if (live == liveHandles.end())
      return fail(RLHF_ERR_PARAM, "stream_destroy: %p is not a live stream handle (destroyed already?)", stream);
    h = live->second;
    liveHandles.erase(live);
  }
  rlhf_status st = RLHF_OK;
  if (h->owned) st = check(cudaStreamDestroy(h->stream), "cudaStreamDestroy");
  cudaFreeHost(h->flag);
  delete h;
  return st;
}

void* rlhf_cuda_stream_raw(void* stream) {
  if (!stream) return nullptr;
  std::lock_guard<std::mutex> lock(registryMutex);
  const auto live = liveHandles.find(stream);
  if (live == liveHandles.end()) {
    fail(RLHF_ERR_PARAM, "stream_raw: %p is not a live stream handle", stream);
    return nullptr;
  }
  return live->second->stream;
}

}  // extern "C"
