// Where a block's KV lives. The values are part of every external format
// (metadata views, copy plans, events, the C ABI's CS_TIER_*).
#pragma once

#include <cstdint>

namespace cachesage {

enum class Tier : uint8_t { Free = 0, Device = 1, Host = 2 };

}  // namespace cachesage
