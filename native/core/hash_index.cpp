#include "hash_index.h"

#include <stdexcept>

namespace cachesage {

HashIndex::HashIndex(int32_t maxEntries) {
  size_t capacity = 16;
  while (capacity < static_cast<size_t>(maxEntries) * 2) capacity <<= 1;
  keys_.assign(capacity, 0);
  values_.assign(capacity, -1);
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
    if (values_[i] < 0) return -1;
    if (keys_[i] == key) return values_[i];
  }
}

void HashIndex::insert(uint64_t key, int32_t value) {
  if (static_cast<size_t>(size_) * 2 >= keys_.size()) {
    throw std::logic_error("internal: hash index full (invariant: entries <= blocks)");
  }
  size_t i = home(key);
  while (values_[i] >= 0) {
    if (keys_[i] == key) throw std::logic_error("internal: hash index insert of a present key");
    i = (i + 1) & mask_;
  }
  keys_[i] = key;
  values_[i] = value;
  ++size_;
}

void HashIndex::erase(uint64_t key) {
  size_t i = home(key);
  while (true) {
    if (values_[i] < 0) throw std::logic_error("internal: hash index erase of an absent key");
    if (keys_[i] == key) break;
    i = (i + 1) & mask_;
  }
  // Backward shift: pull later entries of the cluster into the hole when
  // their home position allows it.
  size_t hole = i;
  for (size_t j = (hole + 1) & mask_; values_[j] >= 0; j = (j + 1) & mask_) {
    size_t h = home(keys_[j]);
    bool movable = (hole <= j) ? (h <= hole || h > j) : (h <= hole && h > j);
    if (movable) {
      keys_[hole] = keys_[j];
      values_[hole] = values_[j];
      hole = j;
    }
  }
  values_[hole] = -1;
  --size_;
}

}  // namespace cachesage
