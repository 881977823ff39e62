#include "eviction_queue.h"

namespace cachesage {

EvictionQueue::EvictionQueue(int32_t numIds, int32_t numClasses, const float* score,
                             const double* lastAccess, const int32_t* scoreClass,
                             const float* classScore)
    : score_(score),
      lastAccess_(lastAccess),
      scoreClass_(scoreClass),
      classScore_(classScore),
      classless_(numClasses),
      blockHeaps_(static_cast<size_t>(numClasses) + 1),
      blockPos_(static_cast<size_t>(numIds), -1),
      blockGroup_(static_cast<size_t>(numIds), -1),
      groupPos_(static_cast<size_t>(numClasses) + 1, -1) {}

bool EvictionQueue::before(int32_t a, int32_t b) const {
  const float sa = effectiveScore(a), sb = effectiveScore(b);
  if (sa != sb) return sa < sb;
  if (lastAccess_[a] != lastAccess_[b]) return lastAccess_[a] < lastAccess_[b];
  return a < b;
}

bool EvictionQueue::blockBefore(int32_t group, const BlockEntry& a, const BlockEntry& b) const {
  if (group == classless_ && a.score != b.score) return a.score < b.score;
  if (a.lastAccess != b.lastAccess) return a.lastAccess < b.lastAccess;
  return a.id < b.id;
}

bool EvictionQueue::groupBefore(const GroupEntry& a, const GroupEntry& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.lastAccess != b.lastAccess) return a.lastAccess < b.lastAccess;
  return a.minId < b.minId;
}

void EvictionQueue::push(int32_t id) {
  const int32_t group = groupOf(id);
  std::vector<BlockEntry>& heap = blockHeaps_[group];
  heap.push_back(keyOf(id));
  blockGroup_[id] = group;
  ++size_;
  blockSiftUp(group, heap.size() - 1, heap.back());
  refreshGroup(group);
}

void EvictionQueue::remove(int32_t id) {
  const int32_t group = blockGroup_[id];
  std::vector<BlockEntry>& heap = blockHeaps_[group];
  const size_t i = static_cast<size_t>(blockPos_[id]);
  blockPos_[id] = -1;
  blockGroup_[id] = -1;
  --size_;
  const BlockEntry last = heap.back();
  heap.pop_back();
  if (i < heap.size()) blockReposition(group, i, last);
  refreshGroup(group);
}

void EvictionQueue::replace(int32_t oldId, int32_t newId) {
  const int32_t group = blockGroup_[oldId];
  if (group != groupOf(newId)) {
    remove(oldId);
    push(newId);
    return;
  }
  const size_t i = static_cast<size_t>(blockPos_[oldId]);
  blockPos_[oldId] = -1;
  blockGroup_[oldId] = -1;
  blockGroup_[newId] = group;
  blockReposition(group, i, keyOf(newId));
  refreshGroup(group);
}

void EvictionQueue::update(int32_t id) {
  const int32_t group = blockGroup_[id];
  if (group != groupOf(id)) {
    // Filed under another class: move it.
    remove(id);
    push(id);
    return;
  }
  blockReposition(group, static_cast<size_t>(blockPos_[id]), keyOf(id));
  refreshGroup(group);
}

void EvictionQueue::classScoreChanged(int32_t scoreClass) { refreshGroup(scoreClass); }

void EvictionQueue::blockReposition(int32_t group, size_t i, BlockEntry entry) {
  const std::vector<BlockEntry>& heap = blockHeaps_[group];
  if (i > 0 && blockBefore(group, entry, heap[(i - 1) / 4])) {
    blockSiftUp(group, i, entry);
  } else {
    blockSiftDown(group, i, entry);
  }
}

void EvictionQueue::blockSiftUp(int32_t group, size_t i, BlockEntry entry) {
  std::vector<BlockEntry>& heap = blockHeaps_[group];
  while (i > 0) {
    const size_t parent = (i - 1) / 4;
    if (!blockBefore(group, entry, heap[parent])) break;
    blockPlace(heap, i, heap[parent]);
    i = parent;
  }
  blockPlace(heap, i, entry);
}

void EvictionQueue::blockSiftDown(int32_t group, size_t i, BlockEntry entry) {
  std::vector<BlockEntry>& heap = blockHeaps_[group];
  const size_t n = heap.size();
  while (true) {
    const size_t first = i * 4 + 1;
    if (first >= n) break;
    size_t best = first;
    const size_t end = first + 4 < n ? first + 4 : n;
    for (size_t c = first + 1; c < end; ++c) {
      if (blockBefore(group, heap[c], heap[best])) best = c;
    }
    if (!blockBefore(group, heap[best], entry)) break;
    blockPlace(heap, i, heap[best]);
    i = best;
  }
  blockPlace(heap, i, entry);
}

void EvictionQueue::refreshGroup(int32_t group) {
  const std::vector<BlockEntry>& heap = blockHeaps_[group];
  const int32_t pos = groupPos_[group];
  if (heap.empty()) {
    if (pos < 0) return;
    groupPos_[group] = -1;
    const GroupEntry last = groups_.back();
    groups_.pop_back();
    if (static_cast<size_t>(pos) == groups_.size()) return;
    const size_t i = static_cast<size_t>(pos);
    if (i > 0 && groupBefore(last, groups_[(i - 1) / 4])) {
      groupSiftUp(i, last);
    } else {
      groupSiftDown(i, last);
    }
    return;
  }
  const BlockEntry& min = heap.front();
  const float score = group == classless_ ? min.score : classScore_[group];
  const GroupEntry entry{score, group, min.lastAccess, min.id};
  if (pos < 0) {
    groups_.push_back(entry);
    groupSiftUp(groups_.size() - 1, entry);
    return;
  }
  const size_t i = static_cast<size_t>(pos);
  if (i > 0 && groupBefore(entry, groups_[(i - 1) / 4])) {
    groupSiftUp(i, entry);
  } else {
    groupSiftDown(i, entry);
  }
}

void EvictionQueue::groupSiftUp(size_t i, GroupEntry entry) {
  while (i > 0) {
    const size_t parent = (i - 1) / 4;
    if (!groupBefore(entry, groups_[parent])) break;
    groupPlace(i, groups_[parent]);
    i = parent;
  }
  groupPlace(i, entry);
}

void EvictionQueue::groupSiftDown(size_t i, GroupEntry entry) {
  const size_t n = groups_.size();
  while (true) {
    const size_t first = i * 4 + 1;
    if (first >= n) break;
    size_t best = first;
    const size_t end = first + 4 < n ? first + 4 : n;
    for (size_t c = first + 1; c < end; ++c) {
      if (groupBefore(groups_[c], groups_[best])) best = c;
    }
    if (!groupBefore(groups_[best], entry)) break;
    groupPlace(i, groups_[best]);
    i = best;
  }
  groupPlace(i, entry);
}

}  // namespace cachesage
