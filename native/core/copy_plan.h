// The copies a step's decisions need (demotions device -> host, loads
// host -> device), in the order the block manager made them, split into
// stages a backend may run in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tier.h"

namespace cachesage {

struct CopyPlan {
  std::vector<uint8_t> srcTier, dstTier;
  std::vector<int32_t> srcSlot, dstSlot;
  // Copies [stageStarts[i], stageStarts[i+1]) read no slot written earlier in
  // the same stage and write no slot read or written earlier in it, so a
  // backend may run one stage's copies in any order or in parallel; stages
  // run in order.
  std::vector<int32_t> stageStarts;
  size_t size() const { return srcSlot.size(); }
  void clear();
};

// Collects copies into the pending plan, opening a new stage whenever a copy
// conflicts with one already in the current stage, until the plan is taken.
class CopyPlanBuilder {
 public:
  CopyPlanBuilder(int32_t deviceSlots, int32_t hostSlots);

  void record(Tier srcTier, int32_t srcSlot, Tier dstTier, int32_t dstSlot);
  // Moves the pending plan into `out` and starts an empty one.
  void take(CopyPlan& out);
  const CopyPlan& pending() const { return plan_; }

 private:
  int32_t deviceSlots_;
  CopyPlan plan_;
  // Generation stamps for stage splitting, per (tier, slot): device slots
  // first, then host slots.
  std::vector<uint32_t> readStamp_, writeStamp_;
  uint32_t stage_ = 1;
};

}  // namespace cachesage
