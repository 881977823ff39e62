// What the block manager did to cached blocks, queued on the native side and
// drained by the control plane in one call per step (never pushed per block).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "block_metadata.h"

namespace cachesage {

enum class EventKind : uint8_t { Stored = 1, Removed = 2, Demoted = 3, Loaded = 4 };

struct Events {
  std::vector<uint8_t> kind;  // EventKind
  std::vector<int32_t> block;
  std::vector<uint64_t> hash;
  std::vector<uint8_t> tier;  // tier after the event (Free for Removed)
  void clear();
};

class EventQueue {
 public:
  // Queues `kind` for block `id` with the block's hash and tier as they are
  // now: record a removal before the block's fields are reset.
  void record(EventKind kind, int32_t id, const BlockMetadata& m);
  // Moves every queued event into `out`, oldest first, and empties the queue.
  void take(Events& out);
  // The queued events, oldest first, to copy out before clear(): a drain
  // that keeps the queue's capacity allocates nothing.
  const Events& pending() const { return events_; }
  void clear() { events_.clear(); }
  size_t size() const { return events_.kind.size(); }

 private:
  Events events_;
};

}  // namespace cachesage
