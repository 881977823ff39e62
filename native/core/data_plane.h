// CPU data plane: the device and host KV pools as real memory, and the
// batched block copy that executes the block manager's copy plans.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "block_manager.h"

namespace cachesage {

// One contiguous, page-aligned pool of `blocks` blocks.
class BlockPool {
 public:
  // `name` ("device", "host") is what errors call the pool.
  BlockPool(const char* name, int64_t bytesPerBlock, int32_t blocks);
  ~BlockPool();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  uint8_t* block(int32_t slot) { return data_ + static_cast<size_t>(slot) * bytesPerBlock_; }
  const uint8_t* block(int32_t slot) const {
    return data_ + static_cast<size_t>(slot) * bytesPerBlock_;
  }
  int32_t blocks() const { return blocks_; }
  int64_t bytesPerBlock() const { return bytesPerBlock_; }

 private:
  uint8_t* data_ = nullptr;
  int64_t bytesPerBlock_;
  int32_t blocks_;
};

// A copy plan as plain arrays, the form it crosses the N-API and C
// boundaries in.
struct CopyPlanView {
  const uint8_t* srcTier;
  const int32_t* srcSlot;
  const uint8_t* dstTier;
  const int32_t* dstSlot;
  int32_t count;
};

class CpuDataPlane {
 public:
  CpuDataPlane(int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks);

  int64_t bytesPerBlock() const { return device_.bytesPerBlock(); }
  int32_t blocks(Tier tier) const;
  uint8_t* block(Tier tier, int32_t slot);
  const uint8_t* block(Tier tier, int32_t slot) const;

  // Throws std::out_of_range naming the first bad entry; copies nothing then.
  void validate(const CopyPlanView& plan) const;
  // Runs the copies in order (validate first).
  void execute(const CopyPlanView& plan);
  void execute(const CopyPlan& plan);

 private:
  BlockPool device_;
  BlockPool host_;
};

// Throws std::out_of_range / std::invalid_argument naming the first bad
// entry of a plan over pools of these sizes: every data plane checks plans
// with it before copying anything.
void validateCopyPlan(const CopyPlanView& plan, int32_t deviceBlocks, int32_t hostBlocks);

// Copies whole blocks between two pools by index lists: the batched
// gather/scatter used by the data plane and by the benchmarks.
void copyBlocks(const uint8_t* srcBase, uint8_t* dstBase, size_t bytesPerBlock,
                const int32_t* srcSlots, const int32_t* dstSlots, int32_t count);

}  // namespace cachesage
