// Block hash -> block id, open addressing with linear probing and
// backward-shift deletion (no tombstones, so probe lengths stay short under
// constant churn). Fixed capacity: at most `maxEntries` keys, table size the
// next power of two >= 2 * maxEntries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cachesage {

class HashIndex {
 public:
  explicit HashIndex(int32_t maxEntries);

  // -1 when absent.
  int32_t find(uint64_t key) const;
  // Starts loading the slot `key` hashes to, so a batch of finds overlaps its
  // cache misses instead of paying them one after another.
  void prefetch(uint64_t key) const { __builtin_prefetch(&entries_[home(key)]); }
  // Key must be absent.
  void insert(uint64_t key, int32_t value);
  // Key must be present.
  void erase(uint64_t key);
  int32_t size() const { return size_; }

 private:
  static uint64_t mix(uint64_t key);
  size_t home(uint64_t key) const { return static_cast<size_t>(mix(key)) & mask_; }

  // Key and value side by side: one cache line per probe.
  struct Entry {
    uint64_t key;
    int32_t value;  // -1 = empty slot
  };
  std::vector<Entry> entries_;
  size_t mask_;
  int32_t size_ = 0;
};

}  // namespace cachesage
