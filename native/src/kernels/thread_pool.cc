#include "thread_pool.h"

#include <sched.h>

#include <cstdlib>
#include <memory>

namespace zf {

ThreadPool::ThreadPool(int threads) {
  if (threads < 1) threads = 1;
  workers_.reserve(threads - 1);
  for (int i = 0; i < threads - 1; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims tasks until none are left. Shared by the caller and the workers (which read task_ and tasks_
// only after registering in active_workers_ under the mutex, so run() cannot retire the job under them).
void ThreadPool::drain() {
  const auto& task = *task_;
  const int64_t tasks = tasks_;
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= tasks) return;
    task(i);
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (task_ == nullptr) continue;  // woke after that job was already retired
      ++active_workers_;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_workers_;
    }
    done_.notify_one();
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& task) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  wake_.notify_all();
  drain();
  // Wait until every task finished and no worker still touches task_ (a late worker that woke after the
  // tasks ran out must leave drain() before the next job replaces task_).
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return finished_.load(std::memory_order_acquire) == tasks_ && active_workers_ == 0; });
  task_ = nullptr;
}

int default_thread_count() {
  if (const char* env = std::getenv("ZEROFLOW_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n >= 1 ? static_cast<int>(n) : 1;
}

namespace {
std::unique_ptr<ThreadPool> g_pool;
}

ThreadPool& global_pool() {
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(default_thread_count());
  return *g_pool;
}

void set_global_pool_threads(int threads) {
  g_pool.reset();
  g_pool = std::make_unique<ThreadPool>(threads >= 1 ? threads : default_thread_count());
}

}  // namespace zf
