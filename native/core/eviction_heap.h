// Indexed 4-ary min-heap of block ids ordered by (score, lastAccess, id).
// Keys are copied into the heap entries, so sifting touches only the heap's
// own memory (a node's four children share a cache line or two) instead of
// the metadata arrays of unrelated blocks. The order is total, so the
// eviction order does not depend on the heap's shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cachesage {

class EvictionHeap {
 public:
  // `score` and `lastAccess` are the metadata arrays keys are read from on
  // push and update.
  EvictionHeap(int32_t numIds, const float* score, const double* lastAccess);

  bool contains(int32_t id) const { return pos_[id] >= 0; }
  bool empty() const { return heap_.empty(); }
  int32_t size() const { return static_cast<int32_t>(heap_.size()); }
  int32_t top() const { return heap_.front().id; }

  void push(int32_t id);
  void remove(int32_t id);
  // Re-reads the key of `id` (its score or last access changed).
  void update(int32_t id);

  // Block a orders before block b, by their current metadata.
  bool before(int32_t a, int32_t b) const { return before(keyOf(a), keyOf(b)); }

 private:
  struct Entry {
    float score;
    int32_t id;
    double lastAccess;
  };
  static bool before(const Entry& a, const Entry& b) {
    if (a.score != b.score) return a.score < b.score;
    if (a.lastAccess != b.lastAccess) return a.lastAccess < b.lastAccess;
    return a.id < b.id;
  }
  Entry keyOf(int32_t id) const { return Entry{score_[id], id, lastAccess_[id]}; }
  void siftUp(size_t i, Entry entry);
  void siftDown(size_t i, Entry entry);
  void place(size_t i, const Entry& entry) {
    heap_[i] = entry;
    pos_[entry.id] = static_cast<int32_t>(i);
  }

  const float* score_;
  const double* lastAccess_;
  std::vector<Entry> heap_;
  std::vector<int32_t> pos_;
};

}  // namespace cachesage
