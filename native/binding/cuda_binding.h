// The seam between the Node-API binding (addon.cc) and its CUDA half.
// addon.cc calls RegisterCuda once at load. cuda_binding.cc (built when nvcc is found) sets
// exports.cuda to an object of CUDA functions; cuda_none.cc (built otherwise) sets
// exports.cudaUnavailable to the reason, so the TypeScript side can report it.
#pragma once
#include <napi.h>

namespace rlhf_binding {
void RegisterCuda(Napi::Env env, Napi::Object exports);
}
