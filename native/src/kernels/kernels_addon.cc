// node-addon-api bindings of zeroflow_kernels, the compute kernels behind @zeroflow/backend-native:
//   sgemmBatched(a, b, c, batch, m, n, k, transA, transB, accumulate?, aIndex?, bIndex?)
//   sgemmBatchedOwn(...)   the same on our own kernel only (never BLAS), for tests and comparisons
//   sgemmBatchedBf16(...)  the same with bf16 inputs on Intel AMX (fp32 accumulation); false when unavailable
//   info()                 { blas, isa, threads }
//   setNumThreads(n)       resizes the pool (0: the default, ZEROFLOW_NUM_THREADS or the cores)
//   binary, exp, softmax, transpose, adamStep, sgdStep: see pointwise_bindings.inc
//   unary, reduce, narrow16, widen16, round16: see math_bindings.inc
// Arrays are read through napi_get_typedarray_info's data pointer, which (unlike ArrayBuffer().Data())
// also works for views over a SharedArrayBuffer. Calls are synchronous: the JS thread blocks until the
// kernel finished, as tfjs kernels must.
#include <napi.h>

#include <string>

#include "attention.h"
#include "gemm.h"
#include "fused.h"
#include "math.h"
#include "pointwise.h"

namespace {

template <typename T>
T* typed_data(const Napi::Env& env, const Napi::Value& v, napi_typedarray_type want, const char* name,
              size_t* length) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a typed array");
  napi_typedarray_type type;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, v, &type, length, &data, &ab, &offset), nullptr);
  if (type != want) {
    throw Napi::TypeError::New(env, std::string(name) + (want == napi_float32_array ? " must be a Float32Array"
                                                                                   : " must be an Int32Array"));
  }
  return static_cast<T*>(data);
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const int64_t v = info[i].As<Napi::Number>().Int64Value();
  if (v < 0) throw Napi::RangeError::New(info.Env(), std::string(name) + " must be >= 0");
  return v;
}

// Parses and checks the arguments shared by both GEMM entry points.
zf::GemmArgs gemm_args(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 9) {
    throw Napi::TypeError::New(env, "sgemmBatched(a, b, c, batch, m, n, k, transA, transB, accumulate?, aIndex?, bIndex?)");
  }
  zf::GemmArgs g{};
  size_t a_len = 0, b_len = 0, c_len = 0;
  g.a = typed_data<float>(env, info[0], napi_float32_array, "a", &a_len);
  g.b = typed_data<float>(env, info[1], napi_float32_array, "b", &b_len);
  g.c = typed_data<float>(env, info[2], napi_float32_array, "c", &c_len);
  g.batch = int_arg(info, 3, "batch");
  g.m = int_arg(info, 4, "m");
  g.n = int_arg(info, 5, "n");
  g.k = int_arg(info, 6, "k");
  g.trans_a = info[7].ToBoolean();
  g.trans_b = info[8].ToBoolean();
  g.accumulate = info.Length() > 9 && info[9].ToBoolean();
  const int64_t a_size = g.m * g.k, b_size = g.k * g.n;
  g.a_batches = a_size > 0 ? static_cast<int64_t>(a_len) / a_size : g.batch;
  g.b_batches = b_size > 0 ? static_cast<int64_t>(b_len) / b_size : g.batch;
  if (static_cast<int64_t>(c_len) < g.batch * g.m * g.n) throw Napi::RangeError::New(env, "c is too short for batch*m*n");
  auto index = [&](size_t i, int64_t held, const char* name) -> const int32_t* {
    if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) {
      if (g.batch > 0 && held < 1) throw Napi::RangeError::New(env, std::string(name) + " holds no whole matrix");
      if (held != 1 && held < g.batch) {
        throw Napi::RangeError::New(env, std::string(name) + " holds neither one matrix nor batch matrices");
      }
      return nullptr;
    }
    size_t len = 0;
    const int32_t* idx = typed_data<int32_t>(env, info[i], napi_int32_array, name, &len);
    if (static_cast<int64_t>(len) < g.batch) throw Napi::RangeError::New(env, std::string(name) + "Index is shorter than batch");
    for (int64_t j = 0; j < g.batch; ++j) {
      if (idx[j] < 0 || idx[j] >= held) throw Napi::RangeError::New(env, std::string(name) + "Index out of range");
    }
    return idx;
  };
  g.a_index = index(10, g.a_batches, "a");
  g.b_index = index(11, g.b_batches, "b");
  return g;
}

Napi::Value SgemmBatched(const Napi::CallbackInfo& info) {
  zf::sgemm_batched(gemm_args(info));
  return info.Env().Undefined();
}

Napi::Value SgemmBatchedOwn(const Napi::CallbackInfo& info) {
  zf::sgemm_batched_own(gemm_args(info));
  return info.Env().Undefined();
}

// Returns whether it ran (false: AMX unavailable, C untouched; the caller uses sgemmBatched).
Napi::Value SgemmBatchedBf16(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), zf::sgemm_batched_bf16(gemm_args(info)));
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("blas", zf::gemm_blas());
  o.Set("isa", zf::gemm_isa());
  o.Set("threads", zf::kernel_threads());
  o.Set("pointwiseIsa", zf::pointwise_isa());
  o.Set("halfIsa", zf::half_isa());
  o.Set("amxBf16", zf::amx_bf16_available());
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  zf::set_kernel_threads(static_cast<int>(int_arg(info, 0, "threads")));
  return Napi::Number::New(info.Env(), zf::kernel_threads());
}

#include "pointwise_bindings.inc"
#include "math_bindings.inc"
#include "fused_bindings.inc"

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  InitPointwise(env, exports);
  InitMath(env, exports);
  InitFused(env, exports);
  exports.Set("sgemmBatched", Napi::Function::New(env, SgemmBatched, "sgemmBatched"));
  exports.Set("sgemmBatchedOwn", Napi::Function::New(env, SgemmBatchedOwn, "sgemmBatchedOwn"));
  exports.Set("sgemmBatchedBf16", Napi::Function::New(env, SgemmBatchedBf16, "sgemmBatchedBf16"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  return exports;
}

}  // namespace

NODE_API_MODULE(zeroflow_kernels, InitAll)
