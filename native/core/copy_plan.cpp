#include "copy_plan.h"

#include <algorithm>
#include <utility>

namespace cachesage {

void CopyPlan::clear() {
  srcTier.clear();
  dstTier.clear();
  srcSlot.clear();
  dstSlot.clear();
  stageStarts.clear();
}

CopyPlanBuilder::CopyPlanBuilder(int32_t deviceSlots, int32_t hostSlots)
    : deviceSlots_(deviceSlots),
      readStamp_(static_cast<size_t>(deviceSlots) + hostSlots, 0),
      writeStamp_(static_cast<size_t>(deviceSlots) + hostSlots, 0) {}

void CopyPlanBuilder::record(Tier srcTier, int32_t srcSlot, Tier dstTier, int32_t dstSlot) {
  const size_t src = (srcTier == Tier::Device ? 0 : deviceSlots_) + srcSlot;
  const size_t dst = (dstTier == Tier::Device ? 0 : deviceSlots_) + dstSlot;
  if (plan_.srcSlot.empty()) {
    plan_.stageStarts.push_back(0);
  } else if (writeStamp_[src] == stage_ || readStamp_[dst] == stage_ ||
             writeStamp_[dst] == stage_) {
    ++stage_;
    plan_.stageStarts.push_back(static_cast<int32_t>(plan_.srcSlot.size()));
  }
  readStamp_[src] = stage_;
  writeStamp_[dst] = stage_;
  plan_.srcTier.push_back(static_cast<uint8_t>(srcTier));
  plan_.srcSlot.push_back(srcSlot);
  plan_.dstTier.push_back(static_cast<uint8_t>(dstTier));
  plan_.dstSlot.push_back(dstSlot);
}

void CopyPlanBuilder::take(CopyPlan& out) {
  // Swapped, not moved: the pending plan keeps the buffers `out` held, so a
  // caller that drains into the same plan every step allocates nothing.
  std::swap(out, plan_);
  plan_.clear();
  // A new generation makes every stamp stale without touching the arrays.
  if (++stage_ == 0) {
    std::fill(readStamp_.begin(), readStamp_.end(), 0);
    std::fill(writeStamp_.begin(), writeStamp_.end(), 0);
    stage_ = 1;
  }
}

}  // namespace cachesage
