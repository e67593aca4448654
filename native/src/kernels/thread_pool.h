// A persistent pool of worker threads for the compute kernels. One pool per process, created on first use
// and sized to the cores (or ZEROFLOW_NUM_THREADS): kernels never spawn a thread per call. The calling
// thread takes part in every job, so a pool of N threads has N-1 workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace zf {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for i in [0, tasks) on the pool and the calling thread; returns when all are done.
  // Jobs are not reentrant: a task must not call run() (kernels only call it from the JS thread).
  void run(int64_t tasks, const std::function<void(int64_t)>& task);

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;  // bumped per job, guarded by mutex_
  bool stopping_ = false;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> finished_{0};
  int active_workers_ = 0;  // workers still inside the current job, guarded by mutex_
};

// The threads the kernels use: ZEROFLOW_NUM_THREADS when set (>= 1), else the cores this process may run on.
int default_thread_count();

// The process-wide pool (created lazily with default_thread_count() threads).
ThreadPool& global_pool();

// Replaces the process-wide pool with one of `threads` threads (tests and tuning); 0 means the default.
void set_global_pool_threads(int threads);

// Runs body(begin, end) over [0, n) in chunks of `chunk` elements: on the global pool when there is more than
// one chunk, inline otherwise. Chunk bounds depend on n and chunk only, never on the thread count.
template <typename Body>
void for_chunks(int64_t n, int64_t chunk, const Body& body) {
  if (n <= 0) return;
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks == 1) {
    body(int64_t{0}, n);
    return;
  }
  global_pool().run(chunks, [&](int64_t c) { body(c * chunk, n < (c + 1) * chunk ? n : (c + 1) * chunk); });
}

}  // namespace zf
