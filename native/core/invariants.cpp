// BlockManager::checkInvariants: the full structural check of the invariants
// block_manager.h lists, kept apart from the operations it audits. It reads
// the manager's state and never changes it.
#include <cstdint>
#include <string>
#include <vector>

#include "block_manager.h"

namespace cachesage {

std::string BlockManager::checkInvariants() const {
  const BlockMetadata& m = *meta_;
  const int32_t n = numBlockIds();
  std::vector<int32_t> slotOwner(n, -1);
  std::vector<int32_t> refs(n, 0), cached(n, 0), onDevice(n, 0);
  std::vector<uint8_t> idFree(n, 0);
  for (int32_t id : freeIds_) {
    if (idFree[id]++) return "block id " + std::to_string(id) + " is on the free list twice";
    if (m.tier[id] != static_cast<uint8_t>(Tier::Free)) {
      return "block id " + std::to_string(id) + " is on the free list but allocated";
    }
  }
  int32_t pinned = 0, device = 0, host = 0;
  for (int32_t id = 0; id < n; ++id) {
    const Tier tier = static_cast<Tier>(m.tier[id]);
    if (tier == Tier::Free) {
      if (!idFree[id]) return "block id " + std::to_string(id) + " leaked (free but not listed)";
      continue;
    }
    const int32_t slotKey = (tier == Tier::Device ? 0 : config_.deviceBlocks) + m.slot[id];
    const int32_t tierCap = tier == Tier::Device ? config_.deviceBlocks : config_.hostBlocks;
    if (m.slot[id] < 0 || m.slot[id] >= tierCap) {
      return "block " + std::to_string(id) + " has slot " + std::to_string(m.slot[id]) +
             " outside its tier";
    }
    if (slotOwner[slotKey] >= 0) {
      return "blocks " + std::to_string(slotOwner[slotKey]) + " and " + std::to_string(id) +
             " share a slot";
    }
    slotOwner[slotKey] = id;
    if (m.refCount[id] < 0) return "block " + std::to_string(id) + " has a negative ref count";
    if (tier == Tier::Device) ++device;
    if (tier == Tier::Host) ++host;
    if (tier == Tier::Device && m.refCount[id] > 0) ++pinned;
    if (tier == Tier::Host && m.refCount[id] > 0) {
      return "host block " + std::to_string(id) + " is pinned outside an admission";
    }
    if (m.committed[id]) {
      if (index_.find(m.hash[id]) != id) {
        return "committed block " + std::to_string(id) + " is missing from the hash index";
      }
      const int32_t p = m.parent[id];
      if (p != kNoBlock) {
        if (m.tier[p] == static_cast<uint8_t>(Tier::Free) || !m.committed[p]) {
          return "block " + std::to_string(id) + " has a parent that is not cached";
        }
        if (tier == Tier::Device && m.tier[p] != static_cast<uint8_t>(Tier::Device)) {
          return "device block " + std::to_string(id) + " has a parent off the device tier";
        }
        ++cached[p];
        if (tier == Tier::Device) ++onDevice[p];
      }
    } else if (m.refCount[id] != 1) {
      return "uncommitted block " + std::to_string(id) + " is not owned by exactly one request";
    }
  }
  if (index_.size() != [&] {
        int32_t c = 0;
        for (int32_t id = 0; id < n; ++id) c += m.committed[id];
        return c;
      }()) {
    return "hash index size differs from the number of committed blocks";
  }
  if (device + static_cast<int32_t>(freeDeviceSlots_.size()) != config_.deviceBlocks) {
    return "device slots leaked or double-freed";
  }
  if (host + static_cast<int32_t>(freeHostSlots_.size()) != config_.hostBlocks) {
    return "host slots leaked or double-freed";
  }
  if (device + host + static_cast<int32_t>(freeIds_.size()) != n) return "block ids leaked";
  for (int32_t slot : freeDeviceSlots_) {
    if (slotOwner[slot] >= 0) return "device slot " + std::to_string(slot) + " is free and used";
  }
  for (int32_t slot : freeHostSlots_) {
    if (slotOwner[config_.deviceBlocks + slot] >= 0) {
      return "host slot " + std::to_string(slot) + " is free and used";
    }
  }
  if (pinned != pinnedDevice_) return "pinned device block count is stale";
  for (const auto& entry : requests_) {
    const Request& r = entry.second;
    for (size_t i = 0; i < r.blocks.size(); ++i) {
      const int32_t id = r.blocks[i];
      if (m.tier[id] != static_cast<uint8_t>(Tier::Device)) {
        return requestName(entry.first) + " holds block " + std::to_string(id) + " off device";
      }
      ++refs[id];
      if (static_cast<int32_t>(i) < r.committed) {
        if (!m.committed[id]) return requestName(entry.first) + " lost a committed block";
        const int32_t expectParent = i == 0 ? kNoBlock : r.blocks[i - 1];
        if (m.parent[id] != expectParent) {
          return requestName(entry.first) + " holds a chain whose links disagree";
        }
      }
    }
  }
  for (int32_t id = 0; id < n; ++id) {
    if (m.tier[id] == static_cast<uint8_t>(Tier::Free)) continue;
    if (refs[id] != m.refCount[id]) {
      return "block " + std::to_string(id) + " has ref count " + std::to_string(m.refCount[id]) +
             " but " + std::to_string(refs[id]) + " request references";
    }
    if (cached[id] != m.cachedChildren[id] || onDevice[id] != m.deviceChildren[id]) {
      return "block " + std::to_string(id) + " has stale child counts";
    }
    if (deviceEvictable(id) != deviceHeap_.contains(id) ||
        hostEvictable(id) != hostHeap_.contains(id)) {
      return "block " + std::to_string(id) + " is misfiled in the eviction heaps";
    }
  }
  return "";
}

}  // namespace cachesage
