// A fixed set of worker threads for the engine's kernels. Work is split into
// as many contiguous ranges as there are threads, always the same split for
// the same count, and each output element is computed by exactly one thread
// in a fixed order, so results do not depend on scheduling.
//
// Between jobs a worker spins for a few tens of microseconds before it
// sleeps, and so does the caller waiting for the workers: a forward pass
// hands the pool dozens of short jobs back to back (a decode step's
// products take tens of microseconds each), and waking a sleeping thread
// costs about as much. With more threads than cores nobody spins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cachesage::engine {

class ThreadPool {
 public:
  // `threads` >= 1; the calling thread is one of them.
  explicit ThreadPool(int32_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int32_t size() const { return static_cast<int32_t>(workers_.size()) + 1; }

  // Runs body(begin, end) over [0, count) in size() contiguous ranges and
  // returns when all are done. The first exception a range threw is
  // rethrown here. Not reentrant: call it from one thread at a time.
  void parallelFor(int64_t count, const std::function<void(int64_t, int64_t)>& body);

 private:
  void work(int32_t index);
  void runRange(int32_t index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t count_ = 0;
  // Written under mutex_; read without it only to decide whether to keep spinning.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int32_t> pending_{0};
  bool stopping_ = false;
  // Polls before sleeping: kSpins, or 0 when there are more threads than cores.
  int spins_ = 0;
  std::exception_ptr error_;
};

}  // namespace cachesage::engine
