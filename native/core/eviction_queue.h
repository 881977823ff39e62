// Eviction order over the evictable blocks of one tier, by
// (effective score, lastAccess, id), lowest first, where a block's effective
// score is its class's score when it has a class and its own score
// otherwise.
//
// Blocks are grouped: one group per score class plus one for classless
// blocks. Within a class every block has the same score, so a class's heap
// orders by (lastAccess, id) alone and stays valid when the class score
// changes; a heap over the groups' minima then picks the victim. Changing a
// class's score is O(log groups), however many blocks the class holds: a
// policy that scores by class never pays a pass over the blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cachesage {

class EvictionQueue {
 public:
  // The arrays are the block metadata (per block id) and the class scores
  // (per class); keys are read from them on push, update and class changes.
  EvictionQueue(int32_t numIds, int32_t numClasses, const float* score, const double* lastAccess,
                const int32_t* scoreClass, const float* classScore);

  bool contains(int32_t id) const { return blockPos_[id] >= 0; }
  bool empty() const { return groups_.empty(); }
  int32_t size() const { return size_; }
  // The block that goes first. Requires !empty().
  int32_t top() const { return groups_.front().minId; }

  void push(int32_t id);
  void remove(int32_t id);
  // remove(oldId) and push(newId) in one step: newId takes oldId's place and
  // moves from there. When a victim's parent becomes evictable as the victim
  // leaves (the usual eviction of a chain), that is one short sift instead
  // of a sift down and a sift up. The order is a total order on the keys,
  // so which way the set got there never changes what goes first.
  void replace(int32_t oldId, int32_t newId);
  // The block's own score or last access changed.
  void update(int32_t id);
  // The score of class `scoreClass` changed.
  void classScoreChanged(int32_t scoreClass);

  float effectiveScore(int32_t id) const {
    return scoreClass_[id] >= 0 ? classScore_[scoreClass_[id]] : score_[id];
  }
  // Block a goes before block b, by their current keys.
  bool before(int32_t a, int32_t b) const;

 private:
  struct BlockEntry {
    float score;  // compared only in the classless group
    int32_t id;
    double lastAccess;
  };
  struct GroupEntry {
    float score;
    int32_t group;
    double lastAccess;
    int32_t minId;
  };

  int32_t groupOf(int32_t id) const { return scoreClass_[id] >= 0 ? scoreClass_[id] : classless_; }
  bool blockBefore(int32_t group, const BlockEntry& a, const BlockEntry& b) const;
  static bool groupBefore(const GroupEntry& a, const GroupEntry& b);
  BlockEntry keyOf(int32_t id) const { return BlockEntry{score_[id], id, lastAccess_[id]}; }

  void blockSiftUp(int32_t group, size_t i, BlockEntry entry);
  void blockSiftDown(int32_t group, size_t i, BlockEntry entry);
  void blockPlace(std::vector<BlockEntry>& heap, size_t i, const BlockEntry& entry) {
    heap[i] = entry;
    blockPos_[entry.id] = static_cast<int32_t>(i);
  }
  void blockReposition(int32_t group, size_t i, BlockEntry entry);

  // Brings the group's entry in the group heap in line with its minimum.
  void refreshGroup(int32_t group);
  void groupSiftUp(size_t i, GroupEntry entry);
  void groupSiftDown(size_t i, GroupEntry entry);
  void groupPlace(size_t i, const GroupEntry& entry) {
    groups_[i] = entry;
    groupPos_[entry.group] = static_cast<int32_t>(i);
  }

  const float* score_;
  const double* lastAccess_;
  const int32_t* scoreClass_;
  const float* classScore_;
  int32_t classless_;  // group index of blocks without a class
  int32_t size_ = 0;
  std::vector<std::vector<BlockEntry>> blockHeaps_;  // per group
  std::vector<int32_t> blockPos_;                    // per block id, -1 when absent
  std::vector<int32_t> blockGroup_;                  // per block id, group it was filed under
  std::vector<GroupEntry> groups_;                   // heap of non-empty groups
  std::vector<int32_t> groupPos_;                    // per group, -1 when absent
};

}  // namespace cachesage
