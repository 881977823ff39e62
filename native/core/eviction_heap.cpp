#include "eviction_heap.h"

namespace cachesage {

EvictionHeap::EvictionHeap(int32_t numIds, const float* score, const double* lastAccess)
    : score_(score), lastAccess_(lastAccess), pos_(static_cast<size_t>(numIds), -1) {
  heap_.reserve(static_cast<size_t>(numIds));
}

void EvictionHeap::push(int32_t id) {
  heap_.push_back(keyOf(id));
  siftUp(heap_.size() - 1, heap_.back());
}

void EvictionHeap::remove(int32_t id) {
  const size_t i = static_cast<size_t>(pos_[id]);
  pos_[id] = -1;
  const Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  if (i > 0 && before(last, heap_[(i - 1) / 4])) {
    siftUp(i, last);
  } else {
    siftDown(i, last);
  }
}

void EvictionHeap::update(int32_t id) {
  const size_t i = static_cast<size_t>(pos_[id]);
  const Entry entry = keyOf(id);
  if (i > 0 && before(entry, heap_[(i - 1) / 4])) {
    siftUp(i, entry);
  } else {
    siftDown(i, entry);
  }
}

void EvictionHeap::siftUp(size_t i, Entry entry) {
  while (i > 0) {
    const size_t parent = (i - 1) / 4;
    if (!before(entry, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, entry);
}

void EvictionHeap::siftDown(size_t i, Entry entry) {
  const size_t n = heap_.size();
  while (true) {
    const size_t first = i * 4 + 1;
    if (first >= n) break;
    size_t best = first;
    const size_t end = first + 4 < n ? first + 4 : n;
    for (size_t c = first + 1; c < end; ++c) {
      if (before(heap_[c], heap_[best])) best = c;
    }
    if (!before(heap_[best], entry)) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, entry);
}

}  // namespace cachesage
