// Per-block state of the block manager, indexed by block id, and the tree
// links that make the committed blocks a radix tree (see block_manager.h for
// the model and its invariants).
#pragma once

#include <cstdint>
#include <vector>

#include "tier.h"

namespace cachesage {

constexpr int32_t kNoBlock = -1;

// Struct-of-arrays block metadata, indexed by block id. Held by shared_ptr so
// zero-copy views handed to JavaScript can outlive the manager safely.
struct BlockMetadata {
  BlockMetadata(int32_t numBlocks, int32_t numClasses);
  std::vector<uint8_t> tier;            // Tier
  std::vector<uint8_t> committed;       // 1 when the hash is in the index
  std::vector<int32_t> slot;            // slot within its tier, -1 when free
  std::vector<int32_t> refCount;
  std::vector<double> lastAccess;       // logical clock
  std::vector<uint32_t> accessCount;
  std::vector<int32_t> workload;        // -1: untagged or used by several
  std::vector<uint64_t> agentMask;      // bit a: agent a used it
  std::vector<int32_t> session;         // -1: shared (several sessions) or untagged
  std::vector<int32_t> depth;           // position in its chain, 0 = first block
  std::vector<int32_t> cachedChildren;  // committed children, any tier
  std::vector<int32_t> deviceChildren;  // committed children on device
  std::vector<uint64_t> hash;
  std::vector<int32_t> parent;          // -1: first block of a chain
  std::vector<float> score;             // eviction score, lower goes first
  std::vector<int32_t> scoreClass;      // -1: scored by `score`; else by classScore
  std::vector<float> classScore;        // per score class

  // Returns every per-block field of `id` except tier and slot to its
  // free-block value; the tier and slot stay with the caller, who owns them.
  void reset(int32_t id);

  // Starts loading every per-block field of `id` into cache. Inline: a call
  // per block would cost more than the prefetch saves.
  void prefetch(int32_t id) const {
    __builtin_prefetch(&tier[id]);
    __builtin_prefetch(&committed[id]);
    __builtin_prefetch(&slot[id]);
    __builtin_prefetch(&refCount[id]);
    __builtin_prefetch(&lastAccess[id]);
    __builtin_prefetch(&accessCount[id]);
    __builtin_prefetch(&workload[id]);
    __builtin_prefetch(&agentMask[id]);
    __builtin_prefetch(&session[id]);
    __builtin_prefetch(&depth[id]);
    __builtin_prefetch(&cachedChildren[id]);
    __builtin_prefetch(&deviceChildren[id]);
    __builtin_prefetch(&hash[id]);
    __builtin_prefetch(&parent[id]);
    __builtin_prefetch(&score[id]);
  }
};

// Each committed block's children as an intrusive doubly linked list over
// sibling links, most recently linked first, so unlinking a child is O(1)
// and dropping a subtree visits children newest first. The parent link and
// the child counts live in BlockMetadata; link() and unlink() keep all of
// them in step.
class BlockTree {
 public:
  explicit BlockTree(int32_t numBlocks);

  // Files `child` under `parentId` (kNoBlock: the first block of a chain,
  // which has no parent to update). Counts the child as a device child when
  // it is on device now.
  void link(BlockMetadata& m, int32_t parentId, int32_t child);
  // Detaches `child` from its parent and returns the parent (kNoBlock when
  // it had none, and then changes nothing).
  int32_t unlink(BlockMetadata& m, int32_t child);

  // kNoBlock when `id` has no children.
  int32_t firstChild(int32_t id) const { return firstChild_[id]; }

  void prefetch(int32_t id) const {
    __builtin_prefetch(&firstChild_[id]);
    __builtin_prefetch(&nextSibling_[id]);
    __builtin_prefetch(&prevSibling_[id]);
  }

 private:
  std::vector<int32_t> firstChild_, nextSibling_, prevSibling_;
};

}  // namespace cachesage
