#include "events.h"

#include <utility>

namespace cachesage {

void Events::clear() {
  kind.clear();
  block.clear();
  hash.clear();
  tier.clear();
}

void EventQueue::record(EventKind kind, int32_t id, const BlockMetadata& m) {
  events_.kind.push_back(static_cast<uint8_t>(kind));
  events_.block.push_back(id);
  events_.hash.push_back(m.hash[id]);
  events_.tier.push_back(kind == EventKind::Removed ? static_cast<uint8_t>(Tier::Free)
                                                    : m.tier[id]);
}

void EventQueue::take(Events& out) {
  out = std::move(events_);
  events_.clear();
}

}  // namespace cachesage
