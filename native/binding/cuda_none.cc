// The CUDA half of the binding when the addon is built without CUDA: it only says why
// (exports.cudaUnavailable), so the TypeScript side can report it in backendStatus().
#include "cuda_binding.h"

#ifndef RLHF_CUDA_REASON
#define RLHF_CUDA_REASON "built without CUDA"
#endif

namespace rlhf_binding {

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  const char* reason = RLHF_CUDA_REASON;
  exports.Set("cudaUnavailable", Napi::String::New(env, reason[0] != '\0' ? reason : "built without CUDA"));
}

}  // namespace rlhf_binding
