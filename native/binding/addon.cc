// The Node-API binding of the CPU kernels: argument checks, typed arrays (zero-copy: the kernels read
// and write the caller's memory), and async work. No math here: every function calls the C ABI of
// include/rlhf/kernels.h and turns a bad status into a thrown Error whose `kind` is the status name
// ("shape", "index", "param", "empty"), which the TypeScript facade turns into an RlhfError.
//
// Each row kernel has a synchronous form and an `...Async` form returning a Promise: the work runs on
// the libuv thread pool, and the input and output arrays stay referenced until it settles. Callers
// must not transfer (detach) those buffers while the Promise is pending.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda_binding.h"
#include "rlhf/kernels.h"

namespace {

// ---- errors -------------------------------------------------------------------------------------

Napi::Error typed_error(Napi::Env env, const char* kind, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, std::string("[") + kind + "] " + message);
  e.Set("kind", Napi::String::New(env, kind));
  return e;
}

[[noreturn]] void throw_kind(Napi::Env env, const char* kind, const std::string& message) {
  throw typed_error(env, kind, message);
}

// ---- arguments ----------------------------------------------------------------------------------

// The values a job must keep alive while it runs off the event loop.
using Keep = std::vector<Napi::Value>;

// A zero-length typed array may have no backing store; the kernels never read it, but the C ABI
// rejects null pointers, so it gets this instead.
float empty_floats[1];
int32_t empty_ints[1];

template <class T>
constexpr napi_typedarray_type typed_array_type();
template <>
constexpr napi_typedarray_type typed_array_type<float>() {
  return napi_float32_array;
}
template <>
constexpr napi_typedarray_type typed_array_type<int32_t>() {
  return napi_int32_array;
}

template <class T>
T* typed_array(const Napi::CallbackInfo& info, size_t index, const char* name, size_t length, Keep* keep,
               bool optional = false) {
  Napi::Env env = info.Env();
  const Napi::Value value = info[index];
  if (optional && (value.IsUndefined() || value.IsNull())) return nullptr;
  const char* type = typed_array_type<T>() == napi_float32_array ? "Float32Array" : "Int32Array";
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != typed_array_type<T>())
    throw_kind(env, "shape", std::string(name) + ": expected a " + type);
  auto array = value.As<Napi::TypedArrayOf<T>>();
  if (array.ArrayBuffer().IsDetached())
    throw_kind(env, "shape", std::string(name) + ": its ArrayBuffer is detached (transferred or closed)");
  if (array.ElementLength() != length)
    throw_kind(env, "shape",
               std::string(name) + ": expected " + std::to_string(length) + " elements, got " +
                   std::to_string(array.ElementLength()));
  keep->push_back(value);
  if (length == 0) {
    if constexpr (std::is_same_v<T, float>) return empty_floats;
    else return empty_ints;
  }
  return array.Data();
}

// A size: a non-negative integer that a double holds exactly.
int64_t size_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  const Napi::Value value = info[index];
  if (!value.IsNumber()) throw_kind(info.Env(), "shape", std::string(name) + ": expected a number");
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || std::trunc(d) != d)
    throw_kind(info.Env(), "shape", std::string(name) + ": expected a non-negative integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

double number_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  const Napi::Value value = info[index];
  if (!value.IsNumber()) throw_kind(info.Env(), "param", std::string(name) + ": expected a number");
  return value.As<Napi::Number>().DoubleValue();
}

// ignoreIndex: any integer. Labels are int32, so one outside int32 equals no label; it is clamped to
// just outside that range, where the C ABI's int64_t holds it exactly.
int64_t ignore_index_arg(const Napi::CallbackInfo& info, size_t index) {
  const double d = number_arg(info, index, "ignoreIndex");
  if (std::trunc(d) != d) throw_kind(info.Env(), "param", "ignoreIndex: expected an integer");
  return static_cast<int64_t>(std::fmin(std::fmax(d, -2147483649.0), 2147483648.0));
}

size_t product(Napi::Env env, int64_t a, int64_t b) {
  if (a != 0 && b > static_cast<int64_t>(SIZE_MAX / 8) / a) throw_kind(env, "shape", "the arrays are too large");
  return static_cast<size_t>(a) * static_cast<size_t>(b);
}

// ---- jobs: one per kernel; parse() checks the arguments, run() calls the C ABI -----------------------

struct LogprobsJob {
  // (logits, labels, n, v, temperature, ignoreIndex, logprobs, entropy, rowStats | null)
  const float* logits;
  const int32_t* labels;
  int64_t n, v;
  double temperature;
  int64_t ignore_index;
  float *logprobs, *entropy, *row_stats;
  LogprobsJob(const Napi::CallbackInfo& info, Keep* keep) {
    n = size_arg(info, 2, "N");
    v = size_arg(info, 3, "V");
    logits = typed_array<float>(info, 0, "logits", product(info.Env(), n, v), keep);
    labels = typed_array<int32_t>(info, 1, "labels", n, keep);
    temperature = number_arg(info, 4, "temperature");
    ignore_index = ignore_index_arg(info, 5);
    logprobs = typed_array<float>(info, 6, "logprobs", n, keep);
    entropy = typed_array<float>(info, 7, "entropy", n, keep);
    row_stats = typed_array<float>(info, 8, "rowStats", product(info.Env(), n, 3), keep, true);
  }
  rlhf_status run() {
    return rlhf_logprobs_f32(logits, labels, n, v, temperature, ignore_index, logprobs, entropy, row_stats);
  }
  Napi::Value result(Napi::Env env) const { return env.Undefined(); }
};

struct LogprobsBackwardJob {
  // (logits, labels, gradLogprobs, gradEntropy | null, rowStats | null, n, v, temperature, ignoreIndex, gradLogits)
  const float* logits;
  const int32_t* labels;
  const float *grad_logprobs, *grad_entropy, *row_stats;
  int64_t n, v;
  double temperature;
  int64_t ignore_index;
  float* grad_logits;
  LogprobsBackwardJob(const Napi::CallbackInfo& info, Keep* keep) {
    n = size_arg(info, 5, "N");
    v = size_arg(info, 6, "V");
    const size_t nv = product(info.Env(), n, v);
    logits = typed_array<float>(info, 0, "logits", nv, keep);
    labels = typed_array<int32_t>(info, 1, "labels", n, keep);
    grad_logprobs = typed_array<float>(info, 2, "gradLogprobs", n, keep);
    grad_entropy = typed_array<float>(info, 3, "gradEntropy", n, keep, true);
    row_stats = typed_array<float>(info, 4, "rowStats", product(info.Env(), n, 3), keep, true);
    temperature = number_arg(info, 7, "temperature");
    ignore_index = ignore_index_arg(info, 8);
    grad_logits = typed_array<float>(info, 9, "gradLogits", nv, keep);
  }
  rlhf_status run() {
    return rlhf_logprobs_backward_f32(logits, labels, grad_logprobs, grad_entropy, row_stats, n, v, temperature,
                                      ignore_index, grad_logits);
  }
  Napi::Value result(Napi::Env env) const { return env.Undefined(); }
};

struct LogsoftmaxJob {
  // (logits, n, v, temperature, out)
  const float* logits;
  int64_t n, v;
  double temperature;
  float* out;
  LogsoftmaxJob(const Napi::CallbackInfo& info, Keep* keep) {
    n = size_arg(info, 1, "N");
    v = size_arg(info, 2, "V");
    const size_t nv = product(info.Env(), n, v);
    logits = typed_array<float>(info, 0, "logits", nv, keep);
    temperature = number_arg(info, 3, "temperature");
    out = typed_array<float>(info, 4, "logsoftmax", nv, keep);
  }
  rlhf_status run() { return rlhf_logsoftmax_f32(logits, n, v, temperature, out); }
  Napi::Value result(Napi::Env env) const { return env.Undefined(); }
};

struct LogsoftmaxBackwardJob {
  // (logits, gradOutput, n, v, temperature, gradLogits)
  const float *logits, *grad_output;
  int64_t n, v;
  double temperature;
  float* grad_logits;
  LogsoftmaxBackwardJob(const Napi::CallbackInfo& info, Keep* keep) {
    n = size_arg(info, 2, "N");
    v = size_arg(info, 3, "V");
    const size_t nv = product(info.Env(), n, v);
    logits = typed_array<float>(info, 0, "logits", nv, keep);
    grad_output = typed_array<float>(info, 1, "gradOutput", nv, keep);
    temperature = number_arg(info, 4, "temperature");
    grad_logits = typed_array<float>(info, 5, "gradLogits", nv, keep);
  }
  rlhf_status run() { return rlhf_logsoftmax_backward_f32(logits, grad_output, n, v, temperature, grad_logits); }
  Napi::Value result(Napi::Env env) const { return env.Undefined(); }
};

struct KlFullJob {
  // (logitsP, logitsQ, gradKl | null, savedStats | null, n, v, temperature, kl, gradLogitsP | null, rowStats | null)
  const float *logits_p, *logits_q, *grad_kl, *saved_stats;
  int64_t n, v;
  double temperature;
  float *kl, *grad_logits_p, *row_stats;
  KlFullJob(const Napi::CallbackInfo& info, Keep* keep) {
    n = size_arg(info, 4, "N");
    v = size_arg(info, 5, "V");
    const size_t nv = product(info.Env(), n, v);
    const size_t stats = product(info.Env(), n, 5);
    logits_p = typed_array<float>(info, 0, "logitsP", nv, keep);
    logits_q = typed_array<float>(info, 1, "logitsQ", nv, keep);
    grad_kl = typed_array<float>(info, 2, "gradKl", n, keep, true);
    saved_stats = typed_array<float>(info, 3, "savedStats", stats, keep, true);
    temperature = number_arg(info, 6, "temperature");
    kl = typed_array<float>(info, 7, "kl", n, keep);
    grad_logits_p = typed_array<float>(info, 8, "gradLogitsP", nv, keep, true);
    row_stats = typed_array<float>(info, 9, "rowStats", stats, keep, true);
  }
  rlhf_status run() {
    return rlhf_kl_full_f32(logits_p, logits_q, grad_kl, saved_stats, n, v, temperature, kl, grad_logits_p, row_stats);
  }
  Napi::Value result(Napi::Env env) const { return env.Undefined(); }
};

Napi::Object loss_stats(Napi::Env env, double loss, double accuracy) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("accuracy", accuracy);
  return o;
}

struct PairwiseJob {
  // (chosen, rejected, margin | null, b, labelSmoothing, centerCoef, gradChosen, gradRejected)
  const float *chosen, *rejected, *margin;
  int64_t b;
  double label_smoothing, center_coef;
  float *grad_chosen, *grad_rejected;
  double loss = 0, accuracy = 0;
  PairwiseJob(const Napi::CallbackInfo& info, Keep* keep) {
    b = size_arg(info, 3, "B");
    chosen = typed_array<float>(info, 0, "chosen", b, keep);
    rejected = typed_array<float>(info, 1, "rejected", b, keep);
    margin = typed_array<float>(info, 2, "margin", b, keep, true);
    label_smoothing = number_arg(info, 4, "labelSmoothing");
    center_coef = number_arg(info, 5, "centerCoef");
    grad_chosen = typed_array<float>(info, 6, "gradChosen", b, keep);
    grad_rejected = typed_array<float>(info, 7, "gradRejected", b, keep);
  }
  rlhf_status run() {
    return rlhf_pairwise_f32(chosen, rejected, margin, b, label_smoothing, center_coef, grad_chosen, grad_rejected,
                             &loss, &accuracy);
  }
  Napi::Value result(Napi::Env env) const { return loss_stats(env, loss, accuracy); }
};

struct RankingJob {
  // (rewards, ranks, b, k, grad)
  const float* rewards;
  const int32_t* ranks;
  int64_t b, k;
  float* grad;
  double loss = 0, accuracy = 0;
  int64_t pairs = 0;
  RankingJob(const Napi::CallbackInfo& info, Keep* keep) {
    b = size_arg(info, 2, "B");
    k = size_arg(info, 3, "K");
    const size_t bk = product(info.Env(), b, k);
    rewards = typed_array<float>(info, 0, "rewards", bk, keep);
    ranks = typed_array<int32_t>(info, 1, "ranks", bk, keep);
    grad = typed_array<float>(info, 4, "grad", bk, keep);
  }
  rlhf_status run() {
    const rlhf_status s = rlhf_ranking_f32(rewards, ranks, b, k, grad, &loss, &accuracy, &pairs);
    // No pair at all is reported through `pairs` (the facade words the error), not thrown.
    return s == RLHF_ERR_EMPTY && pairs == 0 ? RLHF_OK : s;
  }
  Napi::Value result(Napi::Env env) const {
    Napi::Object o = loss_stats(env, loss, accuracy);
    o.Set("pairs", static_cast<double>(pairs));
    return o;
  }
};

struct DpoJob {
  // (policyChosen, policyRejected, refChosen, refRejected, b, beta, lossType (0 sigmoid, 1 hinge, 2 ipo),
  //  labelSmoothing, gradPolicyChosen, gradPolicyRejected, rewardsChosen, rewardsRejected)
  const float *pc, *pr, *rc, *rr;
  int64_t b;
  double beta;
  rlhf_dpo_loss loss_type;
  double label_smoothing;
  float *gpc, *gpr, *rwc, *rwr;
  double loss = 0, accuracy = 0;
  DpoJob(const Napi::CallbackInfo& info, Keep* keep) {
    b = size_arg(info, 4, "B");
    pc = typed_array<float>(info, 0, "policyChosen", b, keep);
    pr = typed_array<float>(info, 1, "policyRejected", b, keep);
    rc = typed_array<float>(info, 2, "refChosen", b, keep);
    rr = typed_array<float>(info, 3, "refRejected", b, keep);
    beta = number_arg(info, 5, "beta");
    const double type = number_arg(info, 6, "lossType");
    if (type != 0 && type != 1 && type != 2) throw_kind(info.Env(), "param", "lossType: expected 0, 1 or 2");
    loss_type = static_cast<rlhf_dpo_loss>(static_cast<int>(type));
    label_smoothing = number_arg(info, 7, "labelSmoothing");
    gpc = typed_array<float>(info, 8, "gradPolicyChosen", b, keep);
    gpr = typed_array<float>(info, 9, "gradPolicyRejected", b, keep);
    rwc = typed_array<float>(info, 10, "rewardsChosen", b, keep);
    rwr = typed_array<float>(info, 11, "rewardsRejected", b, keep);
  }
  rlhf_status run() {
    return rlhf_dpo_f32(pc, pr, rc, rr, b, beta, loss_type, label_smoothing, gpc, gpr, rwc, rwr, &loss, &accuracy);
  }
  Napi::Value result(Napi::Env env) const { return loss_stats(env, loss, accuracy); }
};

// ---- sync and async calls -------------------------------------------------------------------------

template <class Job>
Napi::Value call_sync(const Napi::CallbackInfo& info) {
  Keep keep;
  Job job(info, &keep);
  const rlhf_status s = job.run();
  if (s != RLHF_OK) throw_kind(info.Env(), rlhf_status_name(s), rlhf_last_error());
  return job.result(info.Env());
}

template <class Job>
class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Job job, const Keep& keep)
      : Napi::AsyncWorker(env, "rlhf.kernel"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {
    for (const Napi::Value& v : keep) refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {  // on a thread-pool thread: no Node-API calls here
    status_ = job_.run();
    if (status_ != RLHF_OK) message_ = rlhf_last_error();  // thread-local: read on the same thread
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status_ != RLHF_OK)
      deferred_.Reject(typed_error(env, rlhf_status_name(status_), message_).Value());
    else
      deferred_.Resolve(job_.result(env));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job job_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;  // the arrays stay alive until the work settles
  rlhf_status status_ = RLHF_OK;
  std::string message_;
};

// Bad arguments reject the Promise (they do not throw), like any failure of an async call.
template <class Job>
Napi::Value call_async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Keep keep;
    Job job(info, &keep);
    auto* worker = new Worker<Job>(env, std::move(job), keep);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
}

// ---- introspection --------------------------------------------------------------------------------

Napi::Value cpu_isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), rlhf_cpu_isa()); }

Napi::Value supported_isas(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const char* isa : {"avx512", "avx2", "sse2", "neon", "scalar"})
    if (rlhf_cpu_isa_supported(isa)) out.Set(i++, Napi::String::New(info.Env(), isa));
  return out;
}

Napi::Value force_isa(const Napi::CallbackInfo& info) {
  const std::string isa = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  const rlhf_status s = rlhf_cpu_force_isa(isa.c_str());
  if (s != RLHF_OK) throw_kind(info.Env(), rlhf_status_name(s), rlhf_last_error());
  return Napi::String::New(info.Env(), rlhf_cpu_isa());
}

Napi::Value set_num_threads(const Napi::CallbackInfo& info) {
  const double n = number_arg(info, 0, "threads");
  if (std::trunc(n) != n || n > 4096) throw_kind(info.Env(), "param", "threads: expected an integer <= 4096 (<= 0: default)");
  rlhf_set_num_threads(static_cast<int>(n < 0 ? 0 : n));
  return Napi::Number::New(info.Env(), rlhf_get_num_threads());
}

Napi::Value get_num_threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rlhf_get_num_threads());
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void define(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, F, name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  define<call_sync<LogprobsJob>>(env, exports, "logprobs");
  define<call_sync<LogprobsBackwardJob>>(env, exports, "logprobsBackward");
  define<call_sync<LogsoftmaxJob>>(env, exports, "logsoftmax");
  define<call_sync<LogsoftmaxBackwardJob>>(env, exports, "logsoftmaxBackward");
  define<call_sync<KlFullJob>>(env, exports, "klFull");
  define<call_sync<PairwiseJob>>(env, exports, "pairwise");
  define<call_sync<RankingJob>>(env, exports, "ranking");
  define<call_sync<DpoJob>>(env, exports, "dpo");
  define<call_async<LogprobsJob>>(env, exports, "logprobsAsync");
  define<call_async<LogprobsBackwardJob>>(env, exports, "logprobsBackwardAsync");
  define<call_async<LogsoftmaxJob>>(env, exports, "logsoftmaxAsync");
  define<call_async<LogsoftmaxBackwardJob>>(env, exports, "logsoftmaxBackwardAsync");
  define<call_async<KlFullJob>>(env, exports, "klFullAsync");
  define<cpu_isa>(env, exports, "cpuIsa");
  define<supported_isas>(env, exports, "supportedIsas");
  define<force_isa>(env, exports, "forceIsa");
  exports.Set("version", Napi::String::New(env, rlhf_version()));
  exports.Set("abiVersion", Napi::Number::New(env, rlhf_abi_version()));
  define<set_num_threads>(env, exports, "setNumThreads");
  define<get_num_threads>(env, exports, "getNumThreads");
#if defined(_OPENMP)
  exports.Set("openmp", Napi::Boolean::New(env, true));
#else
  exports.Set("openmp", Napi::Boolean::New(env, false));
#endif
  rlhf_binding::RegisterCuda(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rlhf_native, Init)
