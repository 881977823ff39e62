// Batched block copies on the device: gather/scatter of whole blocks by index
// lists, within the device pool and between it and the pinned host pool, one
// launch per copy-plan stage; and the prefetch path on its own stream.
//
// Longer than ~400 lines: one operation, one file (conventions: kernels), and
// its host launcher, pinned host pool and prefetch stream belong with it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_check.cuh"

namespace cachesage {

namespace {

using cuda_detail::check;

constexpr int kCopyThreads = 256;
// Loads in flight per thread before its stores: enough to cover memory
// latency (and PCIe latency for the host pool) at full occupancy.
constexpr int kCopyUnroll = 4;
// Work unit of one thread block; a 2 MiB block splits into 32 units, so a
// stage of a few blocks still fills the device.
constexpr int64_t kChunkBytes = 64 * 1024;
constexpr int kResidentBlocksPerSM = 2048 / kCopyThreads;

constexpr uint8_t kDeviceTier = static_cast<uint8_t>(Tier::Device);
constexpr uint8_t kHostTier = static_cast<uint8_t>(Tier::Host);

// The copies of one stage. A null tier array means every source is in the
// device pool (srcTier) or every destination in the host pool (dstTier);
// copyBlocksCuda() relies on that to name its two pools.
struct CopyStage {
  uint8_t* devicePool;
  uint8_t* hostPool;
  const uint8_t* srcTier;
  const uint8_t* dstTier;
  const int32_t* srcSlot;
  const int32_t* dstSlot;
  int32_t count;
};

template <typename Vector>
__device__ void copyRange(const Vector* source, Vector* destination, int64_t begin, int64_t end) {
  int64_t i = begin + threadIdx.x;
  for (; i + (kCopyUnroll - 1) * kCopyThreads < end; i += kCopyUnroll * kCopyThreads) {
    Vector values[kCopyUnroll];
#pragma unroll
    for (int u = 0; u < kCopyUnroll; ++u) values[u] = source[i + u * kCopyThreads];
#pragma unroll
    for (int u = 0; u < kCopyUnroll; ++u) destination[i + u * kCopyThreads] = values[u];
  }
  for (; i < end; i += kCopyThreads) destination[i] = source[i];
}

// Grid-stride over (copy, chunk) units; the grid is sized to what the device
// holds at once, so large stages do not pay for millions of thread blocks.
template <typename Vector>
__global__ void __launch_bounds__(kCopyThreads)
    copyStageKernel(CopyStage stage, int64_t vectorsPerBlock, int64_t vectorsPerChunk,
                    int64_t chunksPerBlock) {
  const int64_t units = static_cast<int64_t>(stage.count) * chunksPerBlock;
  for (int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int64_t copy = unit / chunksPerBlock;
    const int64_t chunk = unit - copy * chunksPerBlock;
    const uint8_t srcTier = stage.srcTier != nullptr ? stage.srcTier[copy] : kDeviceTier;
    const uint8_t dstTier = stage.dstTier != nullptr ? stage.dstTier[copy] : kHostTier;
    const Vector* source = reinterpret_cast<const Vector*>(
                               srcTier == kDeviceTier ? stage.devicePool : stage.hostPool) +
                           static_cast<int64_t>(stage.srcSlot[copy]) * vectorsPerBlock;
    Vector* destination =
        reinterpret_cast<Vector*>(dstTier == kDeviceTier ? stage.devicePool : stage.hostPool) +
        static_cast<int64_t>(stage.dstSlot[copy]) * vectorsPerBlock;
    if (source == destination) continue;
    const int64_t begin = chunk * vectorsPerChunk;
    const int64_t end = min(begin + vectorsPerChunk, vectorsPerBlock);
    copyRange(source, destination, begin, end);
  }
}

template <typename Vector>
void launchStage(const CopyStage& stage, size_t bytesPerBlock, int multiprocessors,
                 cudaStream_t stream) {
  const int64_t vectorsPerBlock = static_cast<int64_t>(bytesPerBlock / sizeof(Vector));
  const int64_t vectorsPerChunk = kChunkBytes / static_cast<int64_t>(sizeof(Vector));
  const int64_t chunksPerBlock = (vectorsPerBlock + vectorsPerChunk - 1) / vectorsPerChunk;
  const int64_t units = static_cast<int64_t>(stage.count) * chunksPerBlock;
  const int64_t grid =
      std::min<int64_t>(units, static_cast<int64_t>(multiprocessors) * kResidentBlocksPerSM);
  if (grid <= 0) return;
  copyStageKernel<Vector><<<static_cast<unsigned>(grid), kCopyThreads, 0, stream>>>(
      stage, vectorsPerBlock, vectorsPerChunk, chunksPerBlock);
  cuda_detail::checkLaunch("copyStageKernel");
}

// The widest access every block start allows: 16-byte copies need
// 16-byte-aligned pool bases and a block size that is a multiple of 16.
void launchCopies(const CopyStage& stage, size_t bytesPerBlock, int multiprocessors,
                  cudaStream_t stream) {
  const uintptr_t alignment = reinterpret_cast<uintptr_t>(stage.devicePool) |
                              reinterpret_cast<uintptr_t>(stage.hostPool) | bytesPerBlock;
  if (alignment % 16 == 0) {
    launchStage<uint4>(stage, bytesPerBlock, multiprocessors, stream);
  } else if (alignment % 8 == 0) {
    launchStage<uint2>(stage, bytesPerBlock, multiprocessors, stream);
  } else if (alignment % 4 == 0) {
    launchStage<uint32_t>(stage, bytesPerBlock, multiprocessors, stream);
  } else {
    launchStage<uint8_t>(stage, bytesPerBlock, multiprocessors, stream);
  }
}

// A stream with its own staging for copy lists, so the copy and prefetch
// streams never wait on each other's uploads.
struct Lane {
  cuda_detail::Stream stream;
  cuda_detail::PinnedScratch staging;
  cuda_detail::DeviceScratch lists;
  cuda_detail::Event stagingFree;
  bool stagingUsed = false;

  struct DeviceLists {
    const int32_t* srcSlot;
    const int32_t* dstSlot;
    const uint8_t* srcTier;
    const uint8_t* dstTier;
  };

  // Queues the upload of the plan's four arrays and returns where they land.
  DeviceLists upload(const CopyPlanView& plan) {
    const size_t count = static_cast<size_t>(plan.count);
    const size_t slotBytes = count * sizeof(int32_t);
    const size_t bytes = 2 * slotBytes + 2 * count;
    // The previous upload may still be reading the staging buffer.
    if (stagingUsed) check(cudaEventSynchronize(stagingFree.get()), "cudaEventSynchronize");
    uint8_t* host = static_cast<uint8_t*>(staging.reserve(bytes));
    std::memcpy(host, plan.srcSlot, slotBytes);
    std::memcpy(host + slotBytes, plan.dstSlot, slotBytes);
    std::memcpy(host + 2 * slotBytes, plan.srcTier, count);
    std::memcpy(host + 2 * slotBytes + count, plan.dstTier, count);
    uint8_t* device = static_cast<uint8_t*>(lists.reserve(bytes, stream.get()));
    check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream.get()),
          "cudaMemcpyAsync (copy lists)");
    check(cudaEventRecord(stagingFree.get(), stream.get()), "cudaEventRecord");
    stagingUsed = true;
    return DeviceLists{reinterpret_cast<const int32_t*>(device),
                       reinterpret_cast<const int32_t*>(device + slotBytes), device + 2 * slotBytes,
                       device + 2 * slotBytes + count};
  }
};

size_t poolBytes(int64_t bytesPerBlock, int32_t blocks) {
  if (bytesPerBlock < 0 || blocks < 0) throw std::out_of_range("pool size must be >= 0");
  if (blocks > 0 && static_cast<uint64_t>(bytesPerBlock) >
                        std::numeric_limits<size_t>::max() / static_cast<uint64_t>(blocks)) {
    throw std::out_of_range("pool of " + std::to_string(blocks) + " blocks of " +
                            std::to_string(bytesPerBlock) + " bytes is too large");
  }
  return static_cast<size_t>(bytesPerBlock) * static_cast<size_t>(blocks);
}

const char* tierName(uint8_t tier) { return tier == kDeviceTier ? "device" : "host"; }

}  // namespace

void copyBlocksCuda(const uint8_t* srcBase, uint8_t* dstBase, size_t bytesPerBlock,
                    const int32_t* srcSlots, const int32_t* dstSlots, int32_t count,
                    void* stream) {
  if (count < 0) throw std::out_of_range("copyBlocksCuda: count must be >= 0");
  if (count == 0 || bytesPerBlock == 0) return;
  if (srcBase == nullptr || dstBase == nullptr || srcSlots == nullptr || dstSlots == nullptr) {
    throw std::invalid_argument("copyBlocksCuda: pools and slot lists must not be null");
  }
  CopyStage stage{const_cast<uint8_t*>(srcBase), dstBase, nullptr, nullptr, srcSlots, dstSlots,
                  count};
  launchCopies(stage, bytesPerBlock, cuda_detail::multiprocessorCount(),
               static_cast<cudaStream_t>(stream));
}

struct CudaDataPlane::Impl {
  int64_t bytesPerBlock = 0;
  int32_t deviceBlocks = 0;
  int32_t hostBlocks = 0;
  size_t devicePoolBytes = 0;
  uint8_t* devicePool = nullptr;
  uint8_t* hostPool = nullptr;
  uint8_t* hostPoolOnDevice = nullptr;
  int multiprocessors = 0;
  Lane copies;
  Lane prefetches;
  cuda_detail::Event copiesQueued;
  cuda_detail::Event prefetchDone;
  // Stage checking: per (tier, slot), the stamp of the last stage that read
  // or wrote it. Stamps only grow, so no clearing between calls.
  std::vector<uint32_t> readStamp, writeStamp;
  uint32_t lastStamp = 0;
  std::vector<int32_t> stages;
  std::vector<uint8_t> prefetchSrcTier, prefetchDstTier;

  ~Impl() {
    // Queued copies may still use the pools.
    cudaStreamSynchronize(copies.stream.get());
    cudaStreamSynchronize(prefetches.stream.get());
    cudaFree(devicePool);
    cudaFreeHost(hostPool);
  }

  size_t stampIndex(uint8_t tier, int32_t slot) const {
    return tier == kDeviceTier ? static_cast<size_t>(slot)
                               : static_cast<size_t>(deviceBlocks) + static_cast<size_t>(slot);
  }

  // Makes room for `stamps` fresh stamps after lastStamp.
  void reserveStamps(size_t stamps) {
    if (lastStamp > std::numeric_limits<uint32_t>::max() - stamps - 1) {
      std::fill(readStamp.begin(), readStamp.end(), 0);
      std::fill(writeStamp.begin(), writeStamp.end(), 0);
      lastStamp = 0;
    }
  }

  // The block manager's rule: a copy joins the current stage unless it reads
  // a slot the stage wrote or writes a slot the stage read or wrote.
  bool conflicts(uint32_t stamp, size_t src, size_t dst) const {
    return writeStamp[src] == stamp || readStamp[dst] == stamp || writeStamp[dst] == stamp;
  }

  void checkStages(const CopyPlanView& plan, const int32_t* stageStarts, int32_t stageCount) {
    stages.clear();
    if (plan.count == 0) {
      if (stageStarts != nullptr && stageCount != 0) {
        throw std::invalid_argument("copy plan: an empty plan has no stages, got " +
                                    std::to_string(stageCount));
      }
      return;
    }
    reserveStamps(static_cast<size_t>(plan.count));
    if (stageStarts == nullptr) {
      if (stageCount != 0) {
        throw std::invalid_argument("copy plan: stageCount must be 0 when stageStarts is null");
      }
      uint32_t stamp = ++lastStamp;
      stages.push_back(0);
      for (int32_t i = 0; i < plan.count; ++i) {
        const size_t src = stampIndex(plan.srcTier[i], plan.srcSlot[i]);
        const size_t dst = stampIndex(plan.dstTier[i], plan.dstSlot[i]);
        if (i > 0 && conflicts(stamp, src, dst)) {
          stamp = ++lastStamp;
          stages.push_back(i);
        }
        readStamp[src] = stamp;
        writeStamp[dst] = stamp;
      }
      return;
    }
    if (stageCount < 1 || stageCount > plan.count) {
      throw std::invalid_argument("copy plan: " + std::to_string(plan.count) +
                                  " copies need between 1 and " + std::to_string(plan.count) +
                                  " stages, got " + std::to_string(stageCount));
    }
    for (int32_t s = 0; s < stageCount; ++s) {
      const int32_t start = stageStarts[s];
      const bool ordered = s == 0 ? start == 0 : start > stageStarts[s - 1];
      if (!ordered || start >= plan.count) {
        throw std::invalid_argument("copy plan: stageStarts[" + std::to_string(s) + "] = " +
                                    std::to_string(start) +
                                    " must be 0 for the first stage, then increase, and stay "
                                    "below the copy count " +
                                    std::to_string(plan.count));
      }
    }
    for (int32_t s = 0; s < stageCount; ++s) {
      const uint32_t stamp = ++lastStamp;
      const int32_t end = s + 1 < stageCount ? stageStarts[s + 1] : plan.count;
      for (int32_t i = stageStarts[s]; i < end; ++i) {
        const size_t src = stampIndex(plan.srcTier[i], plan.srcSlot[i]);
        const size_t dst = stampIndex(plan.dstTier[i], plan.dstSlot[i]);
        if (conflicts(stamp, src, dst)) {
          throw std::invalid_argument(
              "copy plan: copy " + std::to_string(i) + " (" + tierName(plan.srcTier[i]) +
              " slot " + std::to_string(plan.srcSlot[i]) + " -> " + tierName(plan.dstTier[i]) +
              " slot " + std::to_string(plan.dstSlot[i]) +
              ") conflicts with an earlier copy of stage " + std::to_string(s));
        }
        readStamp[src] = stamp;
        writeStamp[dst] = stamp;
      }
      stages.push_back(stageStarts[s]);
    }
  }

  void launch(Lane& lane, const CopyPlanView& plan, const std::vector<int32_t>& stageList) {
    const Lane::DeviceLists lists = lane.upload(plan);
    for (size_t s = 0; s < stageList.size(); ++s) {
      const int32_t start = stageList[s];
      const int32_t end = s + 1 < stageList.size() ? stageList[s + 1] : plan.count;
      CopyStage stage{devicePool,           hostPoolOnDevice,     lists.srcTier + start,
                      lists.dstTier + start, lists.srcSlot + start, lists.dstSlot + start,
                      end - start};
      launchCopies(stage, static_cast<size_t>(bytesPerBlock), multiprocessors,
                   lane.stream.get());
    }
  }
};

CudaDataPlane::CudaDataPlane(int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.devicePoolBytes = poolBytes(bytesPerBlock, deviceBlocks);
  const size_t hostBytes = poolBytes(bytesPerBlock, hostBlocks);
  m.bytesPerBlock = bytesPerBlock;
  m.deviceBlocks = deviceBlocks;
  m.hostBlocks = hostBlocks;
  m.multiprocessors = cuda_detail::multiprocessorCount();
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  int mapsHostMemory = 0;
  check(cudaDeviceGetAttribute(&mapsHostMemory, cudaDevAttrCanMapHostMemory, device),
        "cudaDeviceGetAttribute(canMapHostMemory)");
  if (!mapsHostMemory) {
    throw std::runtime_error("CudaDataPlane: the device cannot map host memory");
  }
  if (m.devicePoolBytes > 0) {
    check(cudaMalloc(&m.devicePool, m.devicePoolBytes), "cudaMalloc (device pool)");
    check(cudaMemsetAsync(m.devicePool, 0, m.devicePoolBytes, m.copies.stream.get()),
          "cudaMemsetAsync (device pool)");
    m.copies.stream.synchronize();
  }
  if (hostBytes > 0) {
    check(cudaHostAlloc(reinterpret_cast<void**>(&m.hostPool), hostBytes,
                        cudaHostAllocMapped | cudaHostAllocPortable),
          "cudaHostAlloc (host pool)");
    std::memset(m.hostPool, 0, hostBytes);
    check(cudaHostGetDevicePointer(reinterpret_cast<void**>(&m.hostPoolOnDevice), m.hostPool, 0),
          "cudaHostGetDevicePointer (host pool)");
  }
  const size_t slots = static_cast<size_t>(deviceBlocks) + static_cast<size_t>(hostBlocks);
  m.readStamp.assign(slots, 0);
  m.writeStamp.assign(slots, 0);
}

CudaDataPlane::~CudaDataPlane() = default;

int64_t CudaDataPlane::bytesPerBlock() const { return impl_->bytesPerBlock; }

int32_t CudaDataPlane::blocks(Tier tier) const {
  if (tier == Tier::Device) return impl_->deviceBlocks;
  if (tier == Tier::Host) return impl_->hostBlocks;
  return 0;
}

uint8_t* CudaDataPlane::devicePool() const { return impl_->devicePool; }
uint8_t* CudaDataPlane::hostPool() const { return impl_->hostPool; }

void CudaDataPlane::writeDevice(size_t offset, const void* source, size_t bytes) {
  const size_t size = impl_->devicePoolBytes;
  if (offset > size || bytes > size - offset) {
    throw std::out_of_range("CudaDataPlane::writeDevice: bytes beyond the device pool");
  }
  if (bytes == 0) return;
  // Queued copies and prefetches may still use the same bytes; and on the
  // copy stream the write is ordered before copies queued later.
  impl_->prefetches.stream.synchronize();
  check(cudaMemcpyAsync(impl_->devicePool + offset, source, bytes, cudaMemcpyHostToDevice,
                        impl_->copies.stream.get()),
        "cudaMemcpyAsync (writeDevice)");
  impl_->copies.stream.synchronize();
}

void CudaDataPlane::readDevice(size_t offset, void* destination, size_t bytes) const {
  const size_t size = impl_->devicePoolBytes;
  if (offset > size || bytes > size - offset) {
    throw std::out_of_range("CudaDataPlane::readDevice: bytes beyond the device pool");
  }
  if (bytes == 0) return;
  impl_->prefetches.stream.synchronize();
  check(cudaMemcpyAsync(destination, impl_->devicePool + offset, bytes, cudaMemcpyDeviceToHost,
                        impl_->copies.stream.get()),
        "cudaMemcpyAsync (readDevice)");
  impl_->copies.stream.synchronize();
}

void CudaDataPlane::validate(const CopyPlanView& plan) const {
  validateCopyPlan(plan, blocks(Tier::Device), blocks(Tier::Host));
}

void CudaDataPlane::execute(const CopyPlanView& plan, const int32_t* stageStarts,
                            int32_t stageCount) {
  validate(plan);
  impl_->checkStages(plan, stageStarts, stageCount);
  if (plan.count == 0 || impl_->bytesPerBlock == 0) return;
  impl_->launch(impl_->copies, plan, impl_->stages);
}

void CudaDataPlane::execute(const CopyPlan& plan) {
  const CopyPlanView view{plan.srcTier.data(), plan.srcSlot.data(), plan.dstTier.data(),
                          plan.dstSlot.data(), static_cast<int32_t>(plan.size())};
  // A plan assembled without stages gets them derived, as from a view.
  execute(view, plan.stageStarts.empty() ? nullptr : plan.stageStarts.data(),
          static_cast<int32_t>(plan.stageStarts.size()));
}

void CudaDataPlane::prefetch(const int32_t* hostSlots, const int32_t* deviceSlots,
                             int32_t count) {
  Impl& m = *impl_;
  if (count < 0) throw std::out_of_range("prefetch: count must be >= 0");
  if (count > 0 && (hostSlots == nullptr || deviceSlots == nullptr)) {
    throw std::invalid_argument("prefetch: slot lists must not be null");
  }
  m.prefetchSrcTier.assign(static_cast<size_t>(count), kHostTier);
  m.prefetchDstTier.assign(static_cast<size_t>(count), kDeviceTier);
  const CopyPlanView plan{m.prefetchSrcTier.data(), hostSlots, m.prefetchDstTier.data(),
                          deviceSlots, count};
  validate(plan);
  // Sources are all in the host pool and destinations all on the device, so
  // only a repeated destination can conflict: the batch must be one stage.
  m.reserveStamps(1);
  const uint32_t stamp = ++m.lastStamp;
  for (int32_t i = 0; i < count; ++i) {
    uint32_t& written = m.writeStamp[m.stampIndex(kDeviceTier, deviceSlots[i])];
    if (written == stamp) {
      throw std::invalid_argument("prefetch: device slot " + std::to_string(deviceSlots[i]) +
                                  " of copy " + std::to_string(i) + " is written twice");
    }
    written = stamp;
  }
  if (count == 0 || m.bytesPerBlock == 0) return;
  // Start after the copies queued so far (they may still read or write the
  // destination slots), without blocking the ones queued later.
  check(cudaEventRecord(m.copiesQueued.get(), m.copies.stream.get()), "cudaEventRecord");
  check(cudaStreamWaitEvent(m.prefetches.stream.get(), m.copiesQueued.get(), 0),
        "cudaStreamWaitEvent");
  m.stages.assign(1, 0);
  m.launch(m.prefetches, plan, m.stages);
  check(cudaEventRecord(m.prefetchDone.get(), m.prefetches.stream.get()), "cudaEventRecord");
}

void CudaDataPlane::waitForPrefetch() {
  check(cudaStreamWaitEvent(impl_->copies.stream.get(), impl_->prefetchDone.get(), 0),
        "cudaStreamWaitEvent");
}

bool CudaDataPlane::prefetchComplete() const {
  const cudaError_t status = cudaEventQuery(impl_->prefetchDone.get());
  if (status == cudaErrorNotReady) return false;
  check(status, "cudaEventQuery");
  return true;
}

void CudaDataPlane::synchronize() {
  impl_->copies.stream.synchronize();
  impl_->prefetches.stream.synchronize();
}

}  // namespace cachesage
