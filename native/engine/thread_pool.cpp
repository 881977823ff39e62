#include "thread_pool.h"

#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace cachesage::engine {

namespace {

// About 50 microseconds of polling before a thread sleeps on the condition variable.
constexpr int kSpins = 2000;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int32_t threads) {
  if (threads < 1 || threads > 1024) throw std::out_of_range("ThreadPool: threads must be in [1, 1024]");
  // With more threads than cores a spinning thread would take the core the
  // one with work needs: sleep at once instead.
  const unsigned cores = std::thread::hardware_concurrency();
  spins_ = cores == 0 || static_cast<unsigned>(threads) <= cores ? kSpins : 0;
  workers_.reserve(static_cast<size_t>(threads - 1));
  for (int32_t i = 1; i < threads; i++) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::runRange(int32_t index) {
  int64_t parts = size();
  int64_t begin = count_ * index / parts;
  int64_t end = count_ * (index + 1) / parts;
  if (begin >= end) return;
  try {
    (*body_)(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::work(int32_t index) {
  uint64_t seen = 0;
  for (;;) {
    for (int spin = 0; spin < spins_ && generation_.load(std::memory_order_acquire) == seen; spin++) relax();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stopping_) return;
      seen = generation_.load(std::memory_order_relaxed);
    }
    runRange(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Under the lock, so a caller between its check and its wait cannot miss this.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallelFor(int64_t count, const std::function<void(int64_t, int64_t)>& body) {
  if (count <= 0) return;
  if (workers_.empty() || count == 1) {
    body(0, count);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    count_ = count;
    error_ = nullptr;
    pending_.store(static_cast<int32_t>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_.notify_all();
  runRange(0);
  for (int spin = 0; spin < spins_ && pending_.load(std::memory_order_acquire) != 0; spin++) relax();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    body_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace cachesage::engine
