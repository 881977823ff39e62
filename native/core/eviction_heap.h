// Indexed 4-ary min-heap of block ids ordered by (score, lastAccess, id),
// read from the block metadata arrays. The order is total, so the eviction
// order does not depend on the heap's shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cachesage {

class EvictionHeap {
 public:
  EvictionHeap(int32_t numIds, const float* score, const double* lastAccess);

  bool contains(int32_t id) const { return pos_[id] >= 0; }
  bool empty() const { return heap_.empty(); }
  int32_t size() const { return static_cast<int32_t>(heap_.size()); }
  int32_t top() const { return heap_.front(); }

  void push(int32_t id);
  void remove(int32_t id);
  // Restores order after the key of `id` changed.
  void update(int32_t id);

  // a orders before b.
  bool before(int32_t a, int32_t b) const {
    if (score_[a] != score_[b]) return score_[a] < score_[b];
    if (lastAccess_[a] != lastAccess_[b]) return lastAccess_[a] < lastAccess_[b];
    return a < b;
  }

 private:
  void siftUp(size_t i);
  void siftDown(size_t i);
  void place(size_t i, int32_t id) {
    heap_[i] = id;
    pos_[id] = static_cast<int32_t>(i);
  }

  const float* score_;
  const double* lastAccess_;
  std::vector<int32_t> heap_;
  std::vector<int32_t> pos_;
};

}  // namespace cachesage
