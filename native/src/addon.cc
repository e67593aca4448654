// node-addon-api bindings of zeroflow_shm:
//   ShmComm        a group communicator; operations run on native threads (one for collectives, one per
//                  send peer and per recv peer, so an exchange of sends and recvs cannot deadlock), JS waits
//                  for them either by blocking (`wait`, usable inside a tfjs gradient) or through a callback.
//   mapSegment     shm_open + mmap as an external ArrayBuffer (zero copy), unmapped when collected.
//   unlinkSegment  shm_unlink.
//   reduce         the native reduction kernels on JS buffers (tests, and callers that reduce locally).
//   isa            the instruction set the kernels dispatched to.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <napi.h>
#include <thread>
#include <unordered_map>

#include "reduce_kernels.h"
#include "shm_comm.h"

namespace {

using zf::Comm;
using zf::OpDesc;
using zf::Result;
using zf::Status;

struct PendingOp {
  uint64_t id;
  OpDesc desc;
  bool done = false;
  Result result;
};

// The pointer and length of a typed array's bytes. napi_get_typedarray_info moves small on-heap typed
// arrays off the V8 heap, so the pointer stays valid while JS keeps the array alive (the Work object does).
// The element pointer straight from napi_get_typedarray_info: unlike ArrayBuffer().Data(), it also works for
// views over a SharedArrayBuffer (napi_get_arraybuffer_info rejects those with "Invalid argument").
void* typed_data(const Napi::Value& v, size_t* bytes) {
  auto ta = v.As<Napi::TypedArray>();
  *bytes = ta.ByteLength();
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value ab;
  size_t offset = 0;
  NAPI_THROW_IF_FAILED(v.Env(), napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &ab, &offset), nullptr);
  return data;
}

Napi::Array result_to_js(Napi::Env env, const Result& r) {
  auto a = Napi::Array::New(env, 3);
  a.Set(0u, Napi::Number::New(env, static_cast<int>(r.status)));
  a.Set(1u, Napi::Number::New(env, r.peer));
  a.Set(2u, Napi::String::New(env, r.message));
  return a;
}

class ShmComm : public Napi::ObjectWrap<ShmComm> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "ShmComm",
                       {InstanceMethod("attached", &ShmComm::Attached),
                        InstanceMethod("waitAttachedAndUnlink", &ShmComm::WaitAttachedAndUnlink),
                        InstanceMethod("unlink", &ShmComm::Unlink), InstanceMethod("submit", &ShmComm::Submit),
                        InstanceMethod("wait", &ShmComm::Wait), InstanceMethod("ref", &ShmComm::Ref),
                        InstanceMethod("unref", &ShmComm::Unref), InstanceMethod("destroy", &ShmComm::Destroy),
                        InstanceMethod("mappedBytes", &ShmComm::MappedBytes)});
  }

  // new ShmComm(name, rank, globalRanks[], slotBytes, p2pBytes, onDone(id))
  explicit ShmComm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ShmComm>(info) {
    Napi::Env env = info.Env();
    std::vector<int> ranks;
    auto arr = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) ranks.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
    try {
      comm_ = std::make_unique<Comm>(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                                     ranks, static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()),
                                     static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value()));
    } catch (const std::exception& e) {
      Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[5].As<Napi::Function>(), "zeroflow-shm-done", 0, 1);
    tsfn_.Unref(env);  // an idle group must not keep the process alive; JS refs while work is pending
    has_tsfn_ = true;
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hooked_ = true;
  }

  ~ShmComm() override { Shutdown(); }

 private:
  struct Stream {
    std::thread thread;
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::shared_ptr<PendingOp>> queue;
    bool stop = false;
  };

  static void CleanupHook(void* self) {
    auto* s = static_cast<ShmComm*>(self);
    s->hooked_ = false;
    s->Shutdown();
  }

  void Shutdown() {
    if (!comm_) return;
    comm_->shutdown();
    for (auto& [key, s] : streams_) {
      {
        std::lock_guard<std::mutex> l(s->m);
        s->stop = true;
      }
      s->cv.notify_all();
    }
    for (auto& [key, s] : streams_)
      if (s->thread.joinable()) s->thread.join();
    streams_.clear();
    {
      std::lock_guard<std::mutex> l(done_m_);
      for (auto& [id, op] : ops_)
        if (!op->done) op->done = true, op->result = Result{Status::kShutdown, -1, "the process group was destroyed"};
    }
    done_cv_.notify_all();
    if (has_tsfn_) tsfn_.Release(), has_tsfn_ = false;
    comm_.reset();
    if (hooked_) napi_remove_env_cleanup_hook(Env(), CleanupHook, this), hooked_ = false;
  }

  void RunStream(Stream* s) {
    for (;;) {
      std::shared_ptr<PendingOp> op;
      {
        std::unique_lock<std::mutex> l(s->m);
        s->cv.wait(l, [&] { return s->stop || !s->queue.empty(); });
        if (s->queue.empty()) return;
        op = s->queue.front();
        s->queue.pop_front();
      }
      Result r = comm_->run(op->desc);
      {
        std::lock_guard<std::mutex> l(done_m_);
        op->result = std::move(r);
        op->done = true;
      }
      done_cv_.notify_all();
      auto* id = new uint64_t(op->id);
      if (tsfn_.NonBlockingCall(id, [](Napi::Env env, Napi::Function cb, uint64_t* data) {
            if (env != nullptr) cb.Call({Napi::Number::New(env, static_cast<double>(*data))});
            delete data;
          }) != napi_ok)
        delete id;
    }
  }

  Stream* StreamFor(const OpDesc& d) {
    // Collectives share one ordered stream; each send peer and each recv peer get their own.
    const int key = d.kind == zf::kSend ? 1 + 2 * d.root : d.kind == zf::kRecv ? 2 + 2 * d.root : 0;
    auto it = streams_.find(key);
    if (it != streams_.end()) return it->second.get();
    auto s = std::make_unique<Stream>();
    Stream* raw = s.get();
    raw->thread = std::thread([this, raw] { RunStream(raw); });
    streams_.emplace(key, std::move(s));
    return raw;
  }

  Napi::Value Attached(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), comm_ ? comm_->attached() : 0);
  }

  Napi::Value WaitAttachedAndUnlink(const Napi::CallbackInfo& info) {
    if (!comm_) return result_to_js(info.Env(), Result{Status::kShutdown, -1, "destroyed"});
    return result_to_js(info.Env(), comm_->wait_attached_and_unlink(info[0].As<Napi::Number>().Int64Value()));
  }

  Napi::Value Unlink(const Napi::CallbackInfo& info) {
    if (comm_) comm_->unlink();
    return info.Env().Undefined();
  }

  Napi::Value MappedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), comm_ ? static_cast<double>(comm_->mapped_bytes()) : 0);
  }

  // submit(kind, dtype, rop, rootOrPeer, tag, a, b|null, count, timeoutMs) -> id
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!comm_) {
      Napi::Error::New(env, "the process group was destroyed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto op = std::make_shared<PendingOp>();
    OpDesc& d = op->desc;
    d.kind = info[0].As<Napi::Number>().Uint32Value();
    d.dtype = info[1].As<Napi::Number>().Uint32Value();
    d.rop = info[2].As<Napi::Number>().Uint32Value();
    d.root = info[3].As<Napi::Number>().Int32Value();
    d.tag = info[4].As<Napi::Number>().Int32Value();
    size_t bytes = 0;
    if (info[5].IsTypedArray()) d.a = typed_data(info[5], &bytes);
    if (info[6].IsTypedArray()) d.b = typed_data(info[6], &bytes);
    d.count = static_cast<uint64_t>(info[7].As<Napi::Number>().Int64Value());
    d.timeout_ms = info[8].As<Napi::Number>().Int64Value();
    op->id = ++next_id_;
    {
      std::lock_guard<std::mutex> l(done_m_);
      ops_[op->id] = op;
    }
    Stream* s = StreamFor(d);
    {
      std::lock_guard<std::mutex> l(s->m);
      s->queue.push_back(op);
    }
    s->cv.notify_one();
    return Napi::Number::New(env, static_cast<double>(op->id));
  }

  // wait(id) -> [status, peer, message]: blocks until the op is done, then forgets it.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    const uint64_t id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    std::unique_lock<std::mutex> l(done_m_);
    auto it = ops_.find(id);
    if (it == ops_.end()) return result_to_js(info.Env(), Result{Status::kError, -1, "unknown or collected operation"});
    auto op = it->second;
    done_cv_.wait(l, [&] { return op->done; });
    ops_.erase(id);
    return result_to_js(info.Env(), op->result);
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (has_tsfn_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (has_tsfn_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<Comm> comm_;
  std::map<int, std::unique_ptr<Stream>> streams_;
  std::mutex done_m_;
  std::condition_variable done_cv_;
  std::unordered_map<uint64_t, std::shared_ptr<PendingOp>> ops_;
  uint64_t next_id_ = 0;
  Napi::ThreadSafeFunction tsfn_;
  bool has_tsfn_ = false;
  bool hooked_ = false;
};

// mapSegment(name, bytes, create) -> ArrayBuffer backed by the mapping (munmap when collected).
Napi::Value MapSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const size_t bytes = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  const bool create = info[2].ToBoolean();
  const int fd = shm_open(name.c_str(), O_RDWR | (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    Napi::Error::New(env, "shm_open(" + name + "): " + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (static_cast<size_t>(st.st_size) < bytes && ftruncate(fd, bytes) != 0)) {
    const int e = errno;
    close(fd);
    Napi::Error::New(env, "sizing " + name + ": " + std::strerror(e)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    Napi::Error::New(env, "mmap(" + name + "): " + std::strerror(errno)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::ArrayBuffer::New(
      env, p, bytes, [](Napi::Env, void* data, size_t* len) { munmap(data, *len), delete len; }, new size_t(bytes));
}

Napi::Value UnlinkSegment(const Napi::CallbackInfo& info) {
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(info.Env(), shm_unlink(name.c_str()) == 0);
}

// reduce(dtype, op, dst, srcs[], divisor): dst = fold(srcs) with the native kernels.
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  const uint32_t dtype = info[0].As<Napi::Number>().Uint32Value();
  const uint32_t op = info[1].As<Napi::Number>().Uint32Value();
  size_t dst_bytes = 0;
  void* dst = typed_data(info[2], &dst_bytes);
  auto arr = info[3].As<Napi::Array>();
  std::vector<const void*> srcs;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    size_t b = 0;
    srcs.push_back(typed_data(arr.Get(i), &b));
    if (b < dst_bytes) {
      Napi::RangeError::New(info.Env(), "every source must be at least as long as dst").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
  }
  if (srcs.empty()) return info.Env().Undefined();
  zf::reduce(dtype, op, dst, nullptr, srcs.data(), static_cast<int>(srcs.size()), dst_bytes / zf::dtype_size(dtype),
             info[4].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), zf::reduce_isa()); }

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("ShmComm", ShmComm::Init(env));
  exports.Set("mapSegment", Napi::Function::New(env, MapSegment));
  exports.Set("unlinkSegment", Napi::Function::New(env, UnlinkSegment));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("isa", Napi::Function::New(env, Isa));
  return exports;
}

}  // namespace

NODE_API_MODULE(zeroflow_shm, InitAll)
