// The CUDA half of the Node-API binding: exports.cuda, an object of thin wrappers over
// include/rlhf/kernels_cuda.h, or exports.cudaUnavailable with the reason when no device or driver
// can be used (e.g. cudaGetDeviceCount fails with "insufficient driver").
//
// Device addresses and stream handles cross into JavaScript as BigInt (0n = NULL); sizes are numbers.
// No math and no shape logic here: packages/native/src/device.ts validates shapes, and the C ABI
// checks what it can see. A bad status throws an Error whose `kind` is the status name.
#include <napi.h>

#include <cstdint>
#include <string>

#include "cuda_binding.h"
#include "rlhf/kernels_cuda.h"

namespace {

void check(Napi::Env env, rlhf_status status) {
  if (status == RLHF_OK) return;
  const char* kind = rlhf_status_name(status);
  Napi::Error e = Napi::Error::New(env, std::string("[") + kind + "] " + rlhf_cuda_last_error());
  e.Set("kind", Napi::String::New(env, kind));
  throw e;
}

[[noreturn]] void badArg(Napi::Env env, size_t index, const char* what) {
  Napi::Error e = Napi::TypeError::New(env, "argument " + std::to_string(index) + ": expected " + what);
  e.Set("kind", Napi::String::New(env, "shape"));
  throw e;
}

void* pointerArg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsBigInt()) badArg(info.Env(), i, "a device address (bigint)");
  bool lossless = false;
  const uint64_t value = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) badArg(info.Env(), i, "a 64-bit device address");
  return reinterpret_cast<void*>(static_cast<uintptr_t>(value));
}

template <class T>
T* devicePtr(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<T*>(pointerArg(info, i));
}

double numberArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) badArg(info.Env(), i, "a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i) { return static_cast<int64_t>(numberArg(info, i)); }

Napi::Value address(Napi::Env env, void* p) {
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

// (typedArray) -> host address and byte length of its view.
struct HostView {
  void* data;
  size_t bytes;
};
HostView hostArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsTypedArray()) badArg(info.Env(), i, "a typed array");
  auto array = info[i].As<Napi::TypedArray>();
  // The view's own address, for an ArrayBuffer and a SharedArrayBuffer alike (ArrayBuffer().Data()
  // fails on the latter).
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  bool detached = false;
  if (napi_get_typedarray_info(info.Env(), array, &type, &length, &data, &buffer, &offset) != napi_ok ||
      napi_is_detached_arraybuffer(info.Env(), buffer, &detached) != napi_ok || detached)
    badArg(info.Env(), i, "a typed array whose buffer is not detached");
  return {data, array.ByteLength()};
}

// ---- runtime ------------------------------------------------------------------------------------------

Napi::Value DeviceName(const Napi::CallbackInfo& info) {
  char name[256];
  check(info.Env(), rlhf_cuda_device_name(name, sizeof name));
  return Napi::String::New(info.Env(), name);
}

Napi::Value DeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rlhf_cuda_device_count());
}

Napi::Value SetDevice(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_set_device(static_cast<int>(intArg(info, 0))));
  return info.Env().Undefined();
}

// (bytes) -> address
Napi::Value Malloc(const Napi::CallbackInfo& info) {
  const double bytes = numberArg(info, 0);
  if (!(bytes >= 0 && bytes <= 9007199254740991.0)) badArg(info.Env(), 0, "a byte count");
  void* p = nullptr;
  check(info.Env(), rlhf_cuda_malloc(&p, static_cast<size_t>(bytes)));
  return address(info.Env(), p);
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_free(pointerArg(info, 0)));
  return info.Env().Undefined();
}

// (deviceAddress, byteOffset, typedArray, stream): host -> device; the host array may be reused on return.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  auto* dst = devicePtr<uint8_t>(info, 0);
  const int64_t offset = intArg(info, 1);
  const HostView src = hostArg(info, 2);
  check(info.Env(), rlhf_cuda_memcpy_htod(dst + offset, src.data, src.bytes, pointerArg(info, 3)));
  return info.Env().Undefined();
}

// (typedArray, deviceAddress, byteOffset, stream): device -> host, then waits for the stream, so that a
// bad label or rank found by an earlier kernel on it throws an `index` error here.
Napi::Value Download(const Napi::CallbackInfo& info) {
  const HostView dst = hostArg(info, 0);
  const auto* src = devicePtr<const uint8_t>(info, 1);
  const int64_t offset = intArg(info, 2);
  void* stream = pointerArg(info, 3);
  // The work before the copy, and its error flag, first: a download that fails writes nothing.
  check(info.Env(), rlhf_cuda_stream_synchronize(stream));
  check(info.Env(), rlhf_cuda_memcpy_dtoh(dst.data, src + offset, dst.bytes, stream));
  check(info.Env(), rlhf_cuda_stream_synchronize(stream));
  return info.Env().Undefined();
}

// (dst, src, bytes, stream): device -> device.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_memcpy_dtod(pointerArg(info, 0), pointerArg(info, 1),
                                          static_cast<size_t>(intArg(info, 2)), pointerArg(info, 3)));
  return info.Env().Undefined();
}

Napi::Value StreamCreate(const Napi::CallbackInfo& info) {
  void* s = nullptr;
  check(info.Env(), rlhf_cuda_stream_create(&s));
  return address(info.Env(), s);
}

Napi::Value StreamDestroy(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_stream_destroy(pointerArg(info, 0)));
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_stream_synchronize(pointerArg(info, 0)));
  return info.Env().Undefined();
}

// (maxCluster, cacheRows)
Napi::Value SetRowTuning(const Napi::CallbackInfo& info) {
  rlhf_cuda_set_row_tuning(static_cast<int>(intArg(info, 0)), info[1].ToBoolean() ? 1 : 0);
  return info.Env().Undefined();
}

Napi::Value LastLaunch(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), rlhf_cuda_last_launch());
}

// ---- kernels: the C ABI's argument order, device addresses as bigint, the stream last --------------------

Napi::Value Logprobs(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_logprobs_f32(devicePtr<const float>(info, 0), devicePtr<const int32_t>(info, 1),
                                           intArg(info, 2), intArg(info, 3), numberArg(info, 4),
                                           intArg(info, 5), devicePtr<float>(info, 6),
                                           devicePtr<float>(info, 7), devicePtr<float>(info, 8), pointerArg(info, 9)));
  return info.Env().Undefined();
}

Napi::Value LogprobsBackward(const Napi::CallbackInfo& info) {
  check(info.Env(),
        rlhf_cuda_logprobs_backward_f32(devicePtr<const float>(info, 0), devicePtr<const int32_t>(info, 1),
                                        devicePtr<const float>(info, 2), devicePtr<const float>(info, 3),
                                        devicePtr<const float>(info, 4), intArg(info, 5), intArg(info, 6),
                                        numberArg(info, 7), intArg(info, 8),
                                        devicePtr<float>(info, 9), pointerArg(info, 10)));
  return info.Env().Undefined();
}

Napi::Value Logsoftmax(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_logsoftmax_f32(devicePtr<const float>(info, 0), intArg(info, 1), intArg(info, 2),
                                             numberArg(info, 3), devicePtr<float>(info, 4), pointerArg(info, 5)));
  return info.Env().Undefined();
}

Napi::Value LogsoftmaxBackward(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_logsoftmax_backward_f32(devicePtr<const float>(info, 0), devicePtr<const float>(info, 1),
                                                      intArg(info, 2), intArg(info, 3), numberArg(info, 4),
                                                      devicePtr<float>(info, 5), pointerArg(info, 6)));
  return info.Env().Undefined();
}

Napi::Value KlFull(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_kl_full_f32(devicePtr<const float>(info, 0), devicePtr<const float>(info, 1),
                                          devicePtr<const float>(info, 2), devicePtr<const float>(info, 3),
                                          intArg(info, 4), intArg(info, 5), numberArg(info, 6), devicePtr<float>(info, 7),
                                          devicePtr<float>(info, 8), devicePtr<float>(info, 9), pointerArg(info, 10)));
  return info.Env().Undefined();
}

Napi::Value Pairwise(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_pairwise_f32(devicePtr<const float>(info, 0), devicePtr<const float>(info, 1),
                                           devicePtr<const float>(info, 2), intArg(info, 3), numberArg(info, 4),
                                           numberArg(info, 5), devicePtr<float>(info, 6), devicePtr<float>(info, 7),
                                           devicePtr<double>(info, 8), devicePtr<double>(info, 9),
                                           pointerArg(info, 10)));
  return info.Env().Undefined();
}

Napi::Value Ranking(const Napi::CallbackInfo& info) {
  check(info.Env(), rlhf_cuda_ranking_f32(devicePtr<const float>(info, 0), devicePtr<const int32_t>(info, 1),
                                          intArg(info, 2), intArg(info, 3), devicePtr<float>(info, 4),
                                          devicePtr<double>(info, 5), devicePtr<double>(info, 6),
                                          devicePtr<int64_t>(info, 7), pointerArg(info, 8)));
  return info.Env().Undefined();
}

Napi::Value Dpo(const Napi::CallbackInfo& info) {
  check(info.Env(),
        rlhf_cuda_dpo_f32(devicePtr<const float>(info, 0), devicePtr<const float>(info, 1),
                          devicePtr<const float>(info, 2), devicePtr<const float>(info, 3), intArg(info, 4),
                          numberArg(info, 5), static_cast<rlhf_dpo_loss>(intArg(info, 6)), numberArg(info, 7),
                          devicePtr<float>(info, 8), devicePtr<float>(info, 9), devicePtr<float>(info, 10),
                          devicePtr<float>(info, 11), devicePtr<double>(info, 12), devicePtr<double>(info, 13),
                          pointerArg(info, 14)));
  return info.Env().Undefined();
}

}  // namespace

namespace rlhf_binding {

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  char reason[512] = "";
  if (!rlhf_cuda_available(reason, sizeof reason)) {
    exports.Set("cudaUnavailable", Napi::String::New(env, reason[0] ? reason : "no usable CUDA device"));
    return;
  }
  Napi::Object cuda = Napi::Object::New(env);
  const struct {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  } functions[] = {
      {"deviceName", DeviceName},   {"deviceCount", DeviceCount},
      {"setDevice", SetDevice},     {"malloc", Malloc},
      {"free", Free},               {"upload", Upload},
      {"download", Download},       {"copy", Copy},
      {"streamCreate", StreamCreate}, {"streamDestroy", StreamDestroy},
      {"synchronize", Synchronize}, {"setRowTuning", SetRowTuning},
      {"lastLaunch", LastLaunch},   {"logprobs", Logprobs},
      {"logprobsBackward", LogprobsBackward}, {"logsoftmax", Logsoftmax},
      {"logsoftmaxBackward", LogsoftmaxBackward}, {"klFull", KlFull},
      {"pairwise", Pairwise},       {"ranking", Ranking},
      {"dpo", Dpo},
  };
  for (const auto& f : functions) cuda.Set(f.name, Napi::Function::New(env, f.fn, f.name));
  exports.Set("cuda", cuda);
}

}  // namespace rlhf_binding
