#include "hash_index.h"

#include <stdexcept>

namespace cachesage {

HashIndex::HashIndex(int32_t maxEntries) {
  size_t capacity = 16;
  while (capacity < static_cast<size_t>(maxEntries) * 2) capacity <<= 1;
  entries_.assign(capacity, Entry{0, -1});
  mask_ = capacity - 1;
}

uint64_t HashIndex::mix(uint64_t key) {
  // Block hashes may come from callers with weak low bits; remix them.
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return key;
}

int32_t HashIndex::find(uint64_t key) const {
  for (size_t i = home(key);; i = (i + 1) & mask_) {
    if (entries_[i].value < 0) return -1;
    if (entries_[i].key == key) return entries_[i].value;
  }
}

void HashIndex::insert(uint64_t key, int32_t value) {
  if (static_cast<size_t>(size_) * 2 >= entries_.size()) {
    throw std::logic_error("internal: hash index full (invariant: entries <= blocks)");
  }
  size_t i = home(key);
  while (entries_[i].value >= 0) {
    if (entries_[i].key == key) throw std::logic_error("internal: hash index insert of a present key");
    i = (i + 1) & mask_;
  }
  entries_[i] = Entry{key, value};
  ++size_;
}

void HashIndex::erase(uint64_t key) {
  size_t i = home(key);
  while (true) {
    if (entries_[i].value < 0) throw std::logic_error("internal: hash index erase of an absent key");
    if (entries_[i].key == key) break;
    i = (i + 1) & mask_;
  }
  // Backward shift: pull later entries of the cluster into the hole when
  // their home position allows it.
  size_t hole = i;
  for (size_t j = (hole + 1) & mask_; entries_[j].value >= 0; j = (j + 1) & mask_) {
    size_t h = home(entries_[j].key);
    bool movable = (hole <= j) ? (h <= hole || h > j) : (h <= hole && h > j);
    if (movable) {
      entries_[hole] = entries_[j];
      hole = j;
    }
  }
  entries_[hole].value = -1;
  --size_;
}

}  // namespace cachesage
