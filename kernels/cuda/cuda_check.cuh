// Shared by the .cu files: CUDA status -> exception, and small helpers that
// need CUDA types (so they stay out of cuda_backend.h).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace cachesage {
namespace cuda_detail {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("cuda: ") + what + " failed: " + cudaGetErrorName(status) +
                             " (" + cudaGetErrorString(status) + ")");
  }
}

// A launch reports a bad configuration only through the error state.
inline void checkLaunch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline size_t alignUp(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

inline int multiprocessorCount() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  int count = 0;
  check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute(multiProcessorCount)");
  return count;
}

// A stream owned by a backend object. Non-blocking, so the legacy default
// stream that other libraries may use does not serialise with it.
class Stream {
 public:
  Stream() {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  Event() { check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

// Grow-only device scratch. Growing waits for `stream` first, since queued
// work may still read the old allocation.
class DeviceScratch {
 public:
  DeviceScratch() = default;
  ~DeviceScratch() { cudaFree(data_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  void* reserve(size_t bytes, cudaStream_t stream) {
    if (bytes > bytes_) {
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      check(cudaFree(data_), "cudaFree");
      data_ = nullptr;
      bytes_ = 0;
      check(cudaMalloc(&data_, bytes), "cudaMalloc");
      bytes_ = bytes;
    }
    return data_;
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Grow-only pinned host staging, so host -> device copies of small arrays
// are truly asynchronous. The caller makes sure no queued copy still reads
// it before writing or growing it.
class PinnedScratch {
 public:
  PinnedScratch() = default;
  ~PinnedScratch() { cudaFreeHost(data_); }
  PinnedScratch(const PinnedScratch&) = delete;
  PinnedScratch& operator=(const PinnedScratch&) = delete;

  void* reserve(size_t bytes) {
    if (bytes > bytes_) {
      check(cudaFreeHost(data_), "cudaFreeHost");
      data_ = nullptr;
      bytes_ = 0;
      check(cudaHostAlloc(&data_, bytes, cudaHostAllocDefault), "cudaHostAlloc");
      bytes_ = bytes;
    }
    return data_;
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace cuda_detail
}  // namespace cachesage
