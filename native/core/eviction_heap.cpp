#include "eviction_heap.h"

namespace cachesage {

EvictionHeap::EvictionHeap(int32_t numIds, const float* score, const double* lastAccess)
    : score_(score), lastAccess_(lastAccess), pos_(static_cast<size_t>(numIds), -1) {
  heap_.reserve(static_cast<size_t>(numIds));
}

void EvictionHeap::push(int32_t id) {
  heap_.push_back(id);
  pos_[id] = static_cast<int32_t>(heap_.size() - 1);
  siftUp(heap_.size() - 1);
}

void EvictionHeap::remove(int32_t id) {
  size_t i = static_cast<size_t>(pos_[id]);
  pos_[id] = -1;
  int32_t last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  place(i, last);
  siftUp(i);
  siftDown(static_cast<size_t>(pos_[last]));
}

void EvictionHeap::update(int32_t id) {
  size_t i = static_cast<size_t>(pos_[id]);
  siftUp(i);
  siftDown(static_cast<size_t>(pos_[id]));
}

void EvictionHeap::siftUp(size_t i) {
  int32_t id = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (!before(id, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, id);
}

void EvictionHeap::siftDown(size_t i) {
  int32_t id = heap_[i];
  size_t n = heap_.size();
  while (true) {
    size_t first = i * 4 + 1;
    if (first >= n) break;
    size_t best = first;
    size_t end = first + 4 < n ? first + 4 : n;
    for (size_t c = first + 1; c < end; ++c) {
      if (before(heap_[c], heap_[best])) best = c;
    }
    if (!before(heap_[best], id)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, id);
}

}  // namespace cachesage
