// The CUDA data plane and kernels, callable from plain C++.
//
// No CUDA type crosses this header, so code compiled without nvcc (the
// N-API binding, the C ABI, the benchmarks) can include it. It exists only
// in builds that define CACHESAGE_HAVE_CUDA (CMake does, for users of
// cachesage_cuda), and even there a machine may have no usable device: ask
// cudaAvailable() first and keep the CPU path when it says no.
//
// Layouts are the ones the CPU code uses (one page-table format everywhere):
// pools of whole blocks addressed by (tier, slot), copy plans as in
// data_plane.h, block metadata as in block_metadata.h (read through
// HitScoringInput, hit_scoring.h, which the CPU scorer shares), survival
// arrays as in survival.h, KV pages and block tables as in
// native/engine/model_config.h. Each kernel has a wrapper over host arrays
// (copied in and out) and one over device buffers (for data already on the
// device).
//
// Errors: arguments the CPU code would refuse throw the same exception types
// (std::out_of_range / std::invalid_argument) before any work is queued; a
// failing CUDA call throws std::runtime_error naming the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "block_manager.h"
#include "data_plane.h"
#include "engine.h"
#include "hit_scoring.h"
#include "model_config.h"
#include "survival.h"

namespace cachesage {

// True when a CUDA device is present and can run this build's kernels.
// Never aborts: without a driver or device it returns false and, when `why`
// is not null, stores the reason. The answer is probed once per process.
bool cudaAvailable(std::string* why);

// "NVIDIA H100 80GB HBM3 (compute 9.0, 132 SMs, 79.1 GiB)": the current
// device, for reports. Requires cudaAvailable().
std::string cudaDeviceDescription();

// Waits for all work queued on the current device.
void synchronizeCuda();

// Queues a copy of `bytes` between any two of device memory, pinned host
// memory and pageable host memory on the default stream (cudaMemcpyAsync
// with cudaMemcpyDefault); synchronizeCuda() waits for it. The baseline the
// block-copy kernel is measured against.
void copyBytesCuda(void* destination, const void* source, size_t bytes);

// An owned device allocation.
class CudaDeviceBuffer {
 public:
  CudaDeviceBuffer() = default;
  explicit CudaDeviceBuffer(size_t bytes);
  ~CudaDeviceBuffer();
  CudaDeviceBuffer(CudaDeviceBuffer&& other) noexcept;
  CudaDeviceBuffer& operator=(CudaDeviceBuffer&& other) noexcept;
  CudaDeviceBuffer(const CudaDeviceBuffer&) = delete;
  CudaDeviceBuffer& operator=(const CudaDeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

  // Synchronous copies from / to host memory; the range must lie inside
  // the buffer (std::out_of_range otherwise).
  void upload(const void* source, size_t bytes, size_t offset = 0);
  void download(void* destination, size_t bytes, size_t offset = 0) const;

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Gathers/scatters whole blocks by index lists: copy i moves block
// srcSlots[i] of the pool at srcBase to block dstSlots[i] of the pool at
// dstBase, the CUDA counterpart of copyBlocks() in data_plane.h. Bases are
// device pointers or the device view of mapped pinned host memory; the slot
// lists are device arrays. The copies run in parallel, so they must form a
// stage (no slot written twice, none both read and written); a copy onto
// itself is skipped. Queued on `stream` (a cudaStream_t; null is the default
// stream) and not waited for. Slots are trusted: this form cannot see them.
void copyBlocksCuda(const uint8_t* srcBase, uint8_t* dstBase, size_t bytesPerBlock,
                    const int32_t* srcSlots, const int32_t* dstSlots, int32_t count,
                    void* stream = nullptr);

// The device pool in device memory and the host pool in pinned host memory
// that the device maps, so one kernel launch can copy between any of them.
//
// Copies are queued on the copy stream; prefetches on a separate prefetch
// stream that starts after the copies queued before it and overlaps those
// queued after it, until waitForPrefetch() puts an event between them.
class CudaDataPlane {
 public:
  CudaDataPlane(int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks);
  ~CudaDataPlane();
  CudaDataPlane(const CudaDataPlane&) = delete;
  CudaDataPlane& operator=(const CudaDataPlane&) = delete;

  int64_t bytesPerBlock() const;
  int32_t blocks(Tier tier) const;
  // Device memory: not readable on the host; see readDevice()/writeDevice().
  uint8_t* devicePool() const;
  // Host memory the kernels read and write: the host may touch it only when
  // no queued copy or prefetch uses it (after synchronize()).
  uint8_t* hostPool() const;
  // Synchronous copies between host memory and the device pool, by byte
  // offset into the pool.
  void writeDevice(size_t offset, const void* source, size_t bytes);
  void readDevice(size_t offset, void* destination, size_t bytes) const;

  // The checks, and messages, of CpuDataPlane::validate: throws
  // std::out_of_range naming the first bad entry.
  void validate(const CopyPlanView& plan) const;

  // Queues the plan's copies: one kernel launch per stage, stages in order.
  // `stageStarts` are the copy plan's stages (CopyPlan::stageStarts); they
  // are checked and a stage whose copies conflict throws
  // std::invalid_argument. With no stages (null), the plan is split into
  // stages the way the block manager splits it. Nothing is queued when a
  // check fails.
  void execute(const CopyPlanView& plan, const int32_t* stageStarts, int32_t stageCount);
  void execute(const CopyPlan& plan);

  // Queues host -> device copies of whole blocks (hostSlots[i] to
  // deviceSlots[i]) on the prefetch stream and records its event. Device
  // slots must be distinct.
  void prefetch(const int32_t* hostSlots, const int32_t* deviceSlots, int32_t count);
  // Copies queued from now on wait for the prefetches queued so far; the
  // host does not wait.
  void waitForPrefetch();
  // Whether the prefetches queued so far have finished.
  bool prefetchComplete() const;

  // The host waits for every queued copy and prefetch.
  void synchronize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The host view of a block manager's metadata, as HitScoringInput.
HitScoringInput hitScoringInput(const BlockMetadata& metadata);

// Scores every block in one launch (its effective score: the class score
// when it has a class, its own score otherwise) and selects the k
// lowest-ordered evictable blocks (device tier, committed, refCount 0, no
// device children) by (effective score, lastAccess, id): the device
// eviction order of the block manager.
//
// A score class >= classes (negative ones mean no class) or a non-finite
// effective score throws std::out_of_range naming the lowest such block.
class CudaHitScorer {
 public:
  CudaHitScorer();
  ~CudaHitScorer();
  CudaHitScorer(const CudaHitScorer&) = delete;
  CudaHitScorer& operator=(const CudaHitScorer&) = delete;

  // Host arrays in and out. Writes min(k, evictable) ids in eviction order
  // to `victims` and returns how many; when `effectiveScores` is not null,
  // writes every block's effective score (input.blocks floats). k = 0 only
  // scores.
  int32_t selectVictims(const HitScoringInput& hostInput, int32_t k, int32_t* victims,
                        float* effectiveScores = nullptr);
  // The same over device arrays; `victims` and `effectiveScores` are
  // device pointers.
  int32_t selectVictimsOnDevice(const HitScoringInput& deviceInput, int32_t k, int32_t* victims,
                                float* effectiveScores = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// computeSurvival() on the device: one thread block per workload, its
// transition matrix and F_h in shared memory as float32 (sums in float32 up
// to 32 steps, double beyond; see survival.cu). Results agree with the CPU
// code within max(1e-6, 1e-5 |cpu|). The state count is limited by shared
// memory (maxStates(), 120 on an H100); larger inputs throw
// std::out_of_range, and the caller keeps the CPU path.
class CudaSurvival {
 public:
  CudaSurvival();
  ~CudaSurvival();
  CudaSurvival(const CudaSurvival&) = delete;
  CudaSurvival& operator=(const CudaSurvival&) = delete;

  int32_t maxStates() const;

  // Host arrays: validates as computeSurvival() does, then computes.
  void compute(const SurvivalInputView& input, float* reach, float* alive, float* expectedSteps);
  // Device arrays, sized by `shape` as in survival.h. Values are trusted
  // except END indices, which are checked (std::out_of_range).
  void computeOnDevice(const SurvivalShape& shape, const float* transitions,
                       const int32_t* endState, float* reach, float* alive, float* expectedSteps);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The paged attention kernels of native/engine/attention.h on the device
// (paged_attention.cu), f32, over the same page layout: KV append, prefill
// attention (a chunk at positions [start, start + count) attends causally to
// the cached blocks and itself) and decode attention (one query per
// sequence, each through its own block table). Queries and outputs are
// [rows][heads][headDim], appended K and V rows [tokens][kvHeads][headDim].
//
// kv.base, q, k, v and out are device pointers; block tables and positions
// are host arrays, checked as the CPU kernels check them (std::out_of_range,
// the same messages) and copied to the device. Work is queued on this
// object's stream and not waited for: call synchronize() before reading
// results or the pool from the host. A refused call queues nothing.
class CudaPagedAttention {
 public:
  // Query heads and head dimensions up to these fit the launch shape and
  // shared memory; larger ones throw std::out_of_range.
  static constexpr int32_t kMaxHeads = 65535;
  static constexpr int32_t kMaxHeadDim = 1024;

  CudaPagedAttention();
  ~CudaPagedAttention();
  CudaPagedAttention(const CudaPagedAttention&) = delete;
  CudaPagedAttention& operator=(const CudaPagedAttention&) = delete;

  void appendKv(const engine::PagedKv& kv, int32_t layer, const engine::BlockTableView& table, int32_t start,
                int32_t count, const float* k, const float* v);
  void prefill(const engine::PagedKv& kv, int32_t layer, int32_t heads, const engine::BlockTableView& table,
               int32_t start, int32_t count, const float* q, float* out);
  void decode(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
              const engine::BlockTableView* tables, const int32_t* positions, const float* q, float* out);

  // The host waits for everything queued so far.
  void synchronize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The reference engine's attention (native/engine/engine.h) on the device,
// for an engine whose KV pool is device memory (a CudaDataPlane's device
// pool): each layer's new K/V rows and queries go up in one copy each, the
// appends, prefills and the batched decode run as CudaPagedAttention
// kernels on one stream, and the attention output comes back before the
// layer's dense parts run on the host. Checks as the CPU kernels do.
class CudaEngineAttention final : public engine::AttentionBackend {
 public:
  CudaEngineAttention();
  ~CudaEngineAttention() override;
  CudaEngineAttention(const CudaEngineAttention&) = delete;
  CudaEngineAttention& operator=(const CudaEngineAttention&) = delete;

  const char* name() const override { return "cuda"; }
  void attend(const engine::PagedKv& kv, int32_t heads, int32_t layer, engine::ForwardPass& pass,
              engine::ThreadPool& threads) override;
  void decode(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
              const engine::BlockTableView* tables, const int32_t* positions, const float* q, float* out,
              engine::ThreadPool& threads) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachesage
