// Hit scoring on the device: every block's effective score in one launch, and
// the k evictable blocks that go first in the block manager's device
// eviction order (effective score, lastAccess, id).
//
// Selection compacts the evictable blocks (order kept, so ids stay
// ascending) and radix-sorts them on (score, lastAccess) with CUB. The sort
// is stable, so equal keys keep ascending ids: id needs no key bits.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <cuda/std/tuple>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.cuh"

namespace cachesage {

namespace {

using cuda_detail::check;

constexpr int kScoreThreads = 256;
constexpr uint32_t kNoBlock32 = 0xffffffffu;

struct EvictionKey {
  uint64_t lastAccess;  // order-preserving bits of the double
  uint32_t score;       // order-preserving bits of the float
  int32_t id;
};

struct EvictionKeyDecomposer {
  __host__ __device__ ::cuda::std::tuple<uint32_t&, uint64_t&> operator()(EvictionKey& key) const {
    return {key.score, key.lastAccess};
  }
};

// Unsigned images that sort like the values. -0 becomes +0 first: the CPU
// heap compares with <, where the two are equal.
__device__ uint32_t orderedBits(float value) {
  const uint32_t bits = __float_as_uint(value == 0.0f ? 0.0f : value);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

__device__ uint64_t orderedBits(double value) {
  const uint64_t bits = static_cast<uint64_t>(__double_as_longlong(value == 0.0 ? 0.0 : value));
  return (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
}

struct ScoringStatus {
  uint32_t badClass;  // lowest block with a class >= classes
  uint32_t badScore;  // lowest block whose effective score is not finite
  int32_t evictable;
};

__global__ void __launch_bounds__(kScoreThreads)
    scoreBlocksKernel(HitScoringInput input, float* effectiveScores, EvictionKey* keys,
                      uint8_t* evictable, ScoringStatus* status) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < input.blocks;
       i += stride) {
    const int32_t scoreClass = input.scoreClass[i];
    float score = input.score[i];
    if (scoreClass >= 0) {
      if (scoreClass < input.classes) {
        score = input.classScore[scoreClass];
      } else {
        atomicMin(&status->badClass, static_cast<uint32_t>(i));
      }
    }
    if (!isfinite(score)) atomicMin(&status->badScore, static_cast<uint32_t>(i));
    if (effectiveScores != nullptr) effectiveScores[i] = score;
    evictable[i] = input.tier[i] == static_cast<uint8_t>(Tier::Device) && input.committed[i] != 0 &&
                   input.refCount[i] == 0 && input.deviceChildren[i] == 0;
    keys[i] = EvictionKey{orderedBits(input.lastAccess[i]), orderedBits(score),
                          static_cast<int32_t>(i)};
  }
}

__global__ void victimIdsKernel(const EvictionKey* sorted, int32_t count, int32_t* victims) {
  const int32_t i = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < count) victims[i] = sorted[i].id;
}

template <typename T>
T readElement(const T* array, int64_t index) {
  T value{};
  check(cudaMemcpy(&value, array + index, sizeof(T), cudaMemcpyDefault), "cudaMemcpy (element)");
  return value;
}

}  // namespace

HitScoringInput hitScoringInput(const BlockMetadata& metadata) {
  HitScoringInput input;
  input.blocks = static_cast<int32_t>(metadata.tier.size());
  input.tier = metadata.tier.data();
  input.committed = metadata.committed.data();
  input.refCount = metadata.refCount.data();
  input.deviceChildren = metadata.deviceChildren.data();
  input.lastAccess = metadata.lastAccess.data();
  input.score = metadata.score.data();
  input.scoreClass = metadata.scoreClass.data();
  input.classScore = metadata.classScore.data();
  input.classes = static_cast<int32_t>(metadata.classScore.size());
  return input;
}

struct CudaHitScorer::Impl {
  cuda_detail::Stream stream;
  cuda_detail::DeviceScratch keys, compacted, alternate, flags, temporary, status;
  cuda_detail::DeviceScratch uploaded, victims, scores;
  cuda_detail::PinnedScratch statusHost;
  int multiprocessors = cuda_detail::multiprocessorCount();

  // Scores and selects over device arrays; leaves the victims in `victimsOut`
  // (device) and returns their count. Synchronous.
  int32_t run(const HitScoringInput& input, int32_t k, int32_t* victimsOut,
              float* scoresOut) {
    const cudaStream_t s = stream.get();
    const size_t n = static_cast<size_t>(input.blocks);
    auto* keyArray = static_cast<EvictionKey*>(keys.reserve(n * sizeof(EvictionKey) + 1, s));
    auto* flagArray = static_cast<uint8_t*>(flags.reserve(n + 1, s));
    auto* statusDevice = static_cast<ScoringStatus*>(status.reserve(sizeof(ScoringStatus), s));
    auto* statusPinned = static_cast<ScoringStatus*>(statusHost.reserve(sizeof(ScoringStatus)));
    check(cudaMemsetAsync(statusDevice, 0xff, sizeof(ScoringStatus), s), "cudaMemsetAsync");
    if (n > 0) {
      const int64_t blocksNeeded = (static_cast<int64_t>(n) + kScoreThreads - 1) / kScoreThreads;
      const int64_t grid = std::min<int64_t>(blocksNeeded, static_cast<int64_t>(multiprocessors) *
                                                               (2048 / kScoreThreads));
      scoreBlocksKernel<<<static_cast<unsigned>(grid), kScoreThreads, 0, s>>>(
          input, scoresOut, keyArray, flagArray, statusDevice);
      cuda_detail::checkLaunch("scoreBlocksKernel");
    }
    auto* compactedKeys =
        static_cast<EvictionKey*>(compacted.reserve(n * sizeof(EvictionKey) + 1, s));
    if (k > 0 && n > 0) {
      size_t bytes = 0;
      check(cub::DeviceSelect::Flagged(nullptr, bytes, keyArray, flagArray, compactedKeys,
                                       &statusDevice->evictable, static_cast<int64_t>(n), s),
            "cub::DeviceSelect::Flagged (size)");
      void* storage = temporary.reserve(bytes + 1, s);
      check(cub::DeviceSelect::Flagged(storage, bytes, keyArray, flagArray, compactedKeys,
                                       &statusDevice->evictable, static_cast<int64_t>(n), s),
            "cub::DeviceSelect::Flagged");
    }
    check(cudaMemcpyAsync(statusPinned, statusDevice, sizeof(ScoringStatus),
                          cudaMemcpyDeviceToHost, s),
          "cudaMemcpyAsync (status)");
    stream.synchronize();
    const ScoringStatus result = *statusPinned;
    if (result.badClass != kNoBlock32) {
      const int32_t id = static_cast<int32_t>(result.badClass);
      throw std::out_of_range("hit scoring: block " + std::to_string(id) + " has score class " +
                              std::to_string(readElement(input.scoreClass, id)) +
                              ", but there are only " + std::to_string(input.classes) +
                              " classes");
    }
    if (result.badScore != kNoBlock32) {
      throw std::out_of_range("hit scoring: block " + std::to_string(result.badScore) +
                              " has an effective score that is not finite");
    }
    if (k == 0 || n == 0 || result.evictable <= 0) return 0;

    const int32_t evictable = result.evictable;
    auto* alternateKeys = static_cast<EvictionKey*>(
        alternate.reserve(static_cast<size_t>(evictable) * sizeof(EvictionKey), s));
    cub::DoubleBuffer<EvictionKey> sortKeys(compactedKeys, alternateKeys);
    size_t bytes = 0;
    check(cub::DeviceRadixSort::SortKeys(nullptr, bytes, sortKeys, evictable,
                                         EvictionKeyDecomposer{}, s),
          "cub::DeviceRadixSort::SortKeys (size)");
    void* storage = temporary.reserve(bytes + 1, s);
    check(cub::DeviceRadixSort::SortKeys(storage, bytes, sortKeys, evictable,
                                         EvictionKeyDecomposer{}, s),
          "cub::DeviceRadixSort::SortKeys");
    const int32_t count = std::min(k, evictable);
    victimIdsKernel<<<static_cast<unsigned>((count + 255) / 256), 256, 0, s>>>(
        sortKeys.Current(), count, victimsOut);
    cuda_detail::checkLaunch("victimIdsKernel");
    stream.synchronize();
    return count;
  }
};

CudaHitScorer::CudaHitScorer() : impl_(std::make_unique<Impl>()) {}
CudaHitScorer::~CudaHitScorer() = default;

int32_t CudaHitScorer::selectVictimsOnDevice(const HitScoringInput& deviceInput, int32_t k,
                                             int32_t* victims, float* effectiveScores) {
  checkHitScoringArguments(deviceInput, k, victims);
  return impl_->run(deviceInput, k, victims, effectiveScores);
}

int32_t CudaHitScorer::selectVictims(const HitScoringInput& hostInput, int32_t k,
                                     int32_t* victims, float* effectiveScores) {
  checkHitScoringArguments(hostInput, k, victims);
  Impl& m = *impl_;
  const cudaStream_t s = m.stream.get();
  const size_t n = static_cast<size_t>(hostInput.blocks);
  const size_t classes = static_cast<size_t>(hostInput.classes);

  // One upload buffer, each array at a 256-byte boundary.
  struct Section {
    const void* source;
    size_t bytes;
    size_t offset;
  };
  Section sections[] = {
      {hostInput.tier, n, 0},
      {hostInput.committed, n, 0},
      {hostInput.refCount, n * sizeof(int32_t), 0},
      {hostInput.deviceChildren, n * sizeof(int32_t), 0},
      {hostInput.lastAccess, n * sizeof(double), 0},
      {hostInput.score, n * sizeof(float), 0},
      {hostInput.scoreClass, n * sizeof(int32_t), 0},
      {hostInput.classScore, classes * sizeof(float), 0},
  };
  size_t total = 0;
  for (Section& section : sections) {
    section.offset = total;
    total = cuda_detail::alignUp(total + section.bytes, 256);
  }
  auto* base = static_cast<uint8_t*>(m.uploaded.reserve(total + 1, s));
  for (const Section& section : sections) {
    if (section.bytes == 0) continue;
    check(cudaMemcpyAsync(base + section.offset, section.source, section.bytes,
                          cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync (metadata)");
  }
  HitScoringInput device = hostInput;
  device.tier = base + sections[0].offset;
  device.committed = base + sections[1].offset;
  device.refCount = reinterpret_cast<const int32_t*>(base + sections[2].offset);
  device.deviceChildren = reinterpret_cast<const int32_t*>(base + sections[3].offset);
  device.lastAccess = reinterpret_cast<const double*>(base + sections[4].offset);
  device.score = reinterpret_cast<const float*>(base + sections[5].offset);
  device.scoreClass = reinterpret_cast<const int32_t*>(base + sections[6].offset);
  device.classScore = reinterpret_cast<const float*>(base + sections[7].offset);

  auto* victimsDevice =
      static_cast<int32_t*>(m.victims.reserve(static_cast<size_t>(k) * sizeof(int32_t) + 1, s));
  float* scoresDevice =
      effectiveScores != nullptr ? static_cast<float*>(m.scores.reserve(n * sizeof(float) + 1, s))
                                 : nullptr;
  const int32_t count = m.run(device, k, victimsDevice, scoresDevice);
  if (count > 0) {
    check(cudaMemcpy(victims, victimsDevice, static_cast<size_t>(count) * sizeof(int32_t),
                     cudaMemcpyDeviceToHost),
          "cudaMemcpy (victims)");
  }
  if (effectiveScores != nullptr && n > 0) {
    check(cudaMemcpy(effectiveScores, scoresDevice, n * sizeof(float), cudaMemcpyDeviceToHost),
          "cudaMemcpy (effective scores)");
  }
  return count;
}

}  // namespace cachesage
