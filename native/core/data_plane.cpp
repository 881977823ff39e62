#include "data_plane.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace cachesage {

namespace {
constexpr size_t kPoolAlignment = 4096;
}

BlockPool::BlockPool(const char* name, int64_t bytesPerBlock, int32_t blocks)
    : bytesPerBlock_(bytesPerBlock), blocks_(blocks) {
  const std::string pool = std::string("the ") + name + " pool";
  if (bytesPerBlock < 0 || blocks < 0) throw std::out_of_range(pool + ": sizes must be >= 0");
  // Refuse sizes whose byte count (rounded up to the alignment) overflows.
  if (blocks > 0 && static_cast<uint64_t>(bytesPerBlock) >
                        (SIZE_MAX - kPoolAlignment) / static_cast<uint64_t>(blocks)) {
    throw std::out_of_range(pool + " of " + std::to_string(blocks) + " blocks of " +
                            std::to_string(bytesPerBlock) + " bytes is too large");
  }
  const size_t bytes = static_cast<size_t>(bytesPerBlock) * static_cast<size_t>(blocks);
  if (bytes == 0) return;
  const size_t rounded = (bytes + kPoolAlignment - 1) / kPoolAlignment * kPoolAlignment;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(kPoolAlignment, rounded));
  if (data_ == nullptr) {
    throw std::out_of_range("cannot allocate " + pool + ": " + std::to_string(blocks) + " blocks x " +
                            std::to_string(bytesPerBlock) + " bytes = " + std::to_string(bytes) +
                            " bytes; lower its block count or bytesPerBlock");
  }
  std::memset(data_, 0, bytes);
}

BlockPool::~BlockPool() { std::free(data_); }

CpuDataPlane::CpuDataPlane(int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks)
    : device_("device", bytesPerBlock, deviceBlocks), host_("host", bytesPerBlock, hostBlocks) {}

int32_t CpuDataPlane::blocks(Tier tier) const {
  if (tier == Tier::Device) return device_.blocks();
  if (tier == Tier::Host) return host_.blocks();
  return 0;
}

uint8_t* CpuDataPlane::block(Tier tier, int32_t slot) {
  return tier == Tier::Device ? device_.block(slot) : host_.block(slot);
}

const uint8_t* CpuDataPlane::block(Tier tier, int32_t slot) const {
  return tier == Tier::Device ? device_.block(slot) : host_.block(slot);
}

void validateCopyPlan(const CopyPlanView& plan, int32_t deviceBlocks, int32_t hostBlocks) {
  if (plan.count < 0) throw std::out_of_range("copy plan: count must be >= 0");
  if (plan.count > 0 && (plan.srcTier == nullptr || plan.srcSlot == nullptr ||
                         plan.dstTier == nullptr || plan.dstSlot == nullptr)) {
    throw std::invalid_argument("copy plan: arrays must not be null");
  }
  auto check = [&](uint8_t tier, int32_t slot, int32_t i, const char* side) {
    if (tier != static_cast<uint8_t>(Tier::Device) && tier != static_cast<uint8_t>(Tier::Host)) {
      throw std::out_of_range("copy plan: " + std::string(side) + " tier " + std::to_string(tier) +
                              " of copy " + std::to_string(i) + " is not device (1) or host (2)");
    }
    const int32_t limit = tier == static_cast<uint8_t>(Tier::Device) ? deviceBlocks : hostBlocks;
    if (slot < 0 || slot >= limit) {
      throw std::out_of_range("copy plan: " + std::string(side) + " slot " + std::to_string(slot) +
                              " of copy " + std::to_string(i) + " is out of range [0, " +
                              std::to_string(limit) + ")");
    }
  };
  for (int32_t i = 0; i < plan.count; ++i) {
    check(plan.srcTier[i], plan.srcSlot[i], i, "source");
    check(plan.dstTier[i], plan.dstSlot[i], i, "destination");
  }
}

void CpuDataPlane::validate(const CopyPlanView& plan) const {
  validateCopyPlan(plan, blocks(Tier::Device), blocks(Tier::Host));
}

void CpuDataPlane::execute(const CopyPlanView& plan) {
  validate(plan);
  const size_t bytes = static_cast<size_t>(bytesPerBlock());
  if (bytes == 0) return;
  // Runs of copies between the same pair of pools go through copyBlocks as
  // one batch; order is preserved, so stages need no special handling here.
  int32_t start = 0;
  while (start < plan.count) {
    int32_t end = start + 1;
    while (end < plan.count && plan.srcTier[end] == plan.srcTier[start] &&
           plan.dstTier[end] == plan.dstTier[start]) {
      ++end;
    }
    const Tier src = static_cast<Tier>(plan.srcTier[start]);
    const Tier dst = static_cast<Tier>(plan.dstTier[start]);
    copyBlocks(block(src, 0), block(dst, 0), bytes, plan.srcSlot + start, plan.dstSlot + start,
               end - start);
    start = end;
  }
}

void CpuDataPlane::execute(const CopyPlan& plan) {
  CopyPlanView view{plan.srcTier.data(), plan.srcSlot.data(), plan.dstTier.data(),
                    plan.dstSlot.data(), static_cast<int32_t>(plan.size())};
  execute(view);
}

void copyBlocks(const uint8_t* srcBase, uint8_t* dstBase, size_t bytesPerBlock,
                const int32_t* srcSlots, const int32_t* dstSlots, int32_t count) {
  for (int32_t i = 0; i < count; ++i) {
    const uint8_t* src = srcBase + static_cast<size_t>(srcSlots[i]) * bytesPerBlock;
    uint8_t* dst = dstBase + static_cast<size_t>(dstSlots[i]) * bytesPerBlock;
    // Distinct slots never overlap; a copy onto itself (same pool and slot) is a no-op.
    if (src != dst) std::memcpy(dst, src, bytesPerBlock);
  }
}

}  // namespace cachesage
