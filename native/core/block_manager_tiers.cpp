// BlockManager, second half: where blocks live and the order they leave in.
// Scores and score classes order the two eviction heaps; the explicit
// actions (evict, demote, drop, load) and the steps every operation shares
// (pin, allocateDeviceSlot, evictOneFromDevice, makeHostRoomFor,
// demoteBlock, loadBlock, dropSubtree, dropBlock, freeBlock, refreshHeaps,
// setTier) move blocks between tiers and keep each heap equal to its tier's
// evictable set. The order of these steps is the contract the TypeScript
// reference model reproduces exactly. The request lifecycle that calls them
// is block_manager.cpp.
#include <cmath>
#include <stdexcept>
#include <string>

#include "block_manager.h"

namespace cachesage {

// ---------------------------------------------------------------- scores

void BlockManager::setScores(const int32_t* ids, const float* scores, int32_t count) {
  if (count < 0) throw std::out_of_range("setScores: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= numBlockIds()) {
      throw std::out_of_range("setScores: block id " + std::to_string(ids[i]) +
                              " at index " + std::to_string(i) + " is out of range [0, " +
                              std::to_string(numBlockIds()) + ")");
    }
    if (!std::isfinite(scores[i])) {
      throw std::invalid_argument("setScores: score at index " + std::to_string(i) +
                                  " is not finite");
    }
  }
  for (int32_t i = 0; i < count; ++i) setScore(ids[i], scores[i]);
}

void BlockManager::setAllScores(const float* scores, int32_t count) {
  if (count != numBlockIds()) {
    throw std::invalid_argument("setAllScores: expected " + std::to_string(numBlockIds()) +
                                " scores (one per block id), got " + std::to_string(count));
  }
  for (int32_t i = 0; i < count; ++i) {
    if (!std::isfinite(scores[i])) {
      throw std::invalid_argument("setAllScores: score at index " + std::to_string(i) +
                                  " is not finite");
    }
  }
  for (int32_t i = 0; i < count; ++i) setScore(i, scores[i]);
}

void BlockManager::setScoreClasses(const int32_t* ids, const int32_t* classes, int32_t count) {
  if (count < 0) throw std::out_of_range("setScoreClasses: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= numBlockIds()) {
      throw std::out_of_range("setScoreClasses: block id " + std::to_string(ids[i]) +
                              " at index " + std::to_string(i) + " is out of range [0, " +
                              std::to_string(numBlockIds()) + ")");
    }
    if (classes[i] < -1 || classes[i] >= config_.maxClasses) {
      throw std::out_of_range("setScoreClasses: class " + std::to_string(classes[i]) +
                              " at index " + std::to_string(i) + " is out of range [-1, " +
                              std::to_string(config_.maxClasses) + ")");
    }
  }
  for (int32_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (meta_->scoreClass[id] == classes[i]) continue;
    meta_->scoreClass[id] = classes[i];
    if (deviceHeap_.contains(id)) deviceHeap_.update(id);
    if (hostHeap_.contains(id)) hostHeap_.update(id);
  }
}

void BlockManager::setClassScores(const int32_t* classes, const float* scores, int32_t count) {
  if (count < 0) throw std::out_of_range("setClassScores: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) {
    if (classes[i] < 0 || classes[i] >= config_.maxClasses) {
      throw std::out_of_range("setClassScores: class " + std::to_string(classes[i]) +
                              " at index " + std::to_string(i) + " is out of range [0, " +
                              std::to_string(config_.maxClasses) + ")");
    }
    if (!std::isfinite(scores[i])) {
      throw std::invalid_argument("setClassScores: score at index " + std::to_string(i) +
                                  " is not finite");
    }
  }
  for (int32_t i = 0; i < count; ++i) {
    const int32_t c = classes[i];
    if (meta_->classScore[c] == scores[i]) continue;
    meta_->classScore[c] = scores[i];
    deviceHeap_.classScoreChanged(c);
    hostHeap_.classScoreChanged(c);
  }
}

void BlockManager::setScore(int32_t id, float score) {
  if (meta_->score[id] == score) return;
  meta_->score[id] = score;
  if (deviceHeap_.contains(id)) deviceHeap_.update(id);
  if (hostHeap_.contains(id)) hostHeap_.update(id);
}

// ---------------------------------------------------------------- actions

int32_t BlockManager::evict(Tier tier, int32_t count) {
  if (count < 0) throw std::out_of_range("evict: count must be >= 0");
  if (tier != Tier::Device && tier != Tier::Host) {
    throw std::invalid_argument("evict: tier must be device or host");
  }
  ++generation_;
  int32_t moved = 0;
  if (tier == Tier::Device) {
    while (moved < count && !deviceHeap_.empty()) {
      evictOneFromDevice();
      ++moved;
    }
  } else {
    while (moved < count && !hostHeap_.empty()) {
      dropBlock(hostHeap_.top());
      ++moved;
    }
  }
  return moved;
}

int32_t BlockManager::demote(const int32_t* ids, int32_t count) {
  if (count < 0) throw std::out_of_range("demote: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) checkBlockId(ids[i], "demote");
  int32_t moved = 0;
  ++generation_;
  for (int32_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (!deviceHeap_.contains(id) || config_.hostBlocks == 0) continue;
    if (!makeHostRoomFor(id)) continue;
    demoteBlock(id);
    ++moved;
  }
  return moved;
}

int32_t BlockManager::drop(const int32_t* ids, int32_t count) {
  if (count < 0) throw std::out_of_range("drop: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) checkBlockId(ids[i], "drop");
  int32_t moved = 0;
  ++generation_;
  for (int32_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    const BlockMetadata& m = *meta_;
    if (m.tier[id] == static_cast<uint8_t>(Tier::Free) || !m.committed[id] ||
        m.refCount[id] != 0 || m.cachedChildren[id] != 0) {
      continue;
    }
    dropBlock(id);
    ++moved;
  }
  return moved;
}

int32_t BlockManager::load(const int32_t* ids, int32_t count) {
  if (count < 0) throw std::out_of_range("load: count must be >= 0");
  for (int32_t i = 0; i < count; ++i) checkBlockId(ids[i], "load");
  int32_t moved = 0;
  ++generation_;
  for (int32_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    const BlockMetadata& m = *meta_;
    if (m.tier[id] != static_cast<uint8_t>(Tier::Host)) continue;
    const int32_t parentId = m.parent[id];
    if (parentId != kNoBlock && m.tier[parentId] != static_cast<uint8_t>(Tier::Device)) continue;
    if (freeDeviceSlots_.empty()) {
      // Only make room by evicting a block worth less than this one, and
      // never this block's own parent.
      if (deviceHeap_.empty()) continue;
      const int32_t victim = deviceHeap_.top();
      if (victim == parentId || !deviceHeap_.before(victim, id)) continue;
      evictOneFromDevice();
    }
    loadBlock(id, allocateDeviceSlot());
    ++moved;
  }
  return moved;
}

int32_t BlockManager::usedBlocks(Tier tier) const {
  if (tier == Tier::Device) {
    return config_.deviceBlocks - static_cast<int32_t>(freeDeviceSlots_.size());
  }
  if (tier == Tier::Host) return config_.hostBlocks - static_cast<int32_t>(freeHostSlots_.size());
  throw std::invalid_argument("usedBlocks: tier must be device or host");
}

int32_t BlockManager::evictableBlocks(Tier tier) const {
  if (tier == Tier::Device) return deviceHeap_.size();
  if (tier == Tier::Host) return hostHeap_.size();
  throw std::invalid_argument("evictableBlocks: tier must be device or host");
}

// ---------------------------------------------------------------- internals

void BlockManager::pin(int32_t id) {
  BlockMetadata& m = *meta_;
  if (m.refCount[id]++ == 0) {
    if (m.tier[id] == static_cast<uint8_t>(Tier::Device)) ++pinnedDevice_;
    refreshHeaps(id);
  }
}

void BlockManager::unpin(int32_t id) {
  BlockMetadata& m = *meta_;
  if (m.refCount[id] <= 0) {
    throw std::logic_error("internal: ref count of block " + std::to_string(id) +
                           " would go negative");
  }
  if (--m.refCount[id] == 0) {
    if (m.tier[id] == static_cast<uint8_t>(Tier::Device)) --pinnedDevice_;
    refreshHeaps(id);
  }
}

int32_t BlockManager::allocateDeviceSlot() {
  if (freeDeviceSlots_.empty()) {
    if (deviceHeap_.empty()) {
      throw std::logic_error("internal: no device slot free and nothing evictable "
                             "(admission check should have refused)");
    }
    evictOneFromDevice();
  }
  int32_t slot = freeDeviceSlots_.back();
  freeDeviceSlots_.pop_back();
  return slot;
}

void BlockManager::prefetchBlock(int32_t id) const {
  meta_->prefetch(id);
  tree_.prefetch(id);
}

void BlockManager::evictOneFromDevice() {
  const int32_t victim = deviceHeap_.top();
  // Eviction walks cold blocks one field array at a time; loading the
  // victim's lines and its parent's (usually the next victim) together
  // overlaps the misses.
  prefetchBlock(victim);
  if (meta_->parent[victim] != kNoBlock) prefetchBlock(meta_->parent[victim]);
  if (config_.hostBlocks > 0 && makeHostRoomFor(victim)) {
    demoteBlock(victim);
  } else {
    dropSubtree(victim);
  }
}

bool BlockManager::makeHostRoomFor(int32_t victim) {
  if (!freeHostSlots_.empty()) return true;
  if (hostHeap_.empty()) return false;
  const int32_t hostVictim = hostHeap_.top();
  // Never drop a host block worth more than the one being demoted.
  if (!hostHeap_.before(hostVictim, victim)) return false;
  dropBlock(hostVictim);
  return true;
}

void BlockManager::demoteBlock(int32_t id) {
  const int32_t hostSlot = freeHostSlots_.back();
  freeHostSlots_.pop_back();
  const int32_t deviceSlot = meta_->slot[id];
  recordCopy(Tier::Device, deviceSlot, Tier::Host, hostSlot);
  freeDeviceSlots_.push_back(deviceSlot);
  meta_->slot[id] = hostSlot;
  const int32_t outer = leaving_;
  leaving_ = id;
  setTier(id, Tier::Host);
  leaving_ = outer;
  recordEvent(EventKind::Demoted, id);
}

void BlockManager::loadBlock(int32_t id, int32_t deviceSlot) {
  const int32_t hostSlot = meta_->slot[id];
  recordCopy(Tier::Host, hostSlot, Tier::Device, deviceSlot);
  freeHostSlots_.push_back(hostSlot);
  meta_->slot[id] = deviceSlot;
  if (meta_->refCount[id] > 0) ++pinnedDevice_;
  setTier(id, Tier::Device);
  recordEvent(EventKind::Loaded, id);
}

void BlockManager::dropSubtree(int32_t id) {
  // Host descendants of a dropped block are unreachable: drop them first,
  // leaves before parents, most recently linked child first.
  while (tree_.firstChild(id) != kNoBlock) dropSubtree(tree_.firstChild(id));
  dropBlock(id);
}

void BlockManager::dropBlock(int32_t id) {
  BlockMetadata& m = *meta_;
  if (m.refCount[id] != 0 || m.cachedChildren[id] != 0) {
    throw std::logic_error("internal: dropping block " + std::to_string(id) +
                           " that is pinned or has children");
  }
  if (m.committed[id]) {
    // The hash's slot in the index is a cache miss of its own at scale:
    // start loading it, unlink from the parent (its heaps) meanwhile, then
    // erase. The index and the tree are independent, so the order changes
    // nothing else.
    const uint64_t hash = m.hash[id];
    index_.prefetch(hash);
    const int32_t outer = leaving_;
    leaving_ = id;
    unlinkChild(id);
    leaving_ = outer;
    index_.erase(hash);
  }
  recordEvent(EventKind::Removed, id);
  freeBlock(id);
}

void BlockManager::freeBlock(int32_t id) {
  BlockMetadata& m = *meta_;
  if (deviceHeap_.contains(id)) deviceHeap_.remove(id);
  if (hostHeap_.contains(id)) hostHeap_.remove(id);
  const Tier tier = static_cast<Tier>(m.tier[id]);
  if (tier == Tier::Device) freeDeviceSlots_.push_back(m.slot[id]);
  if (tier == Tier::Host) freeHostSlots_.push_back(m.slot[id]);
  m.tier[id] = static_cast<uint8_t>(Tier::Free);
  m.slot[id] = -1;
  m.reset(id);
  freeIds_.push_back(id);
}

bool BlockManager::deviceEvictable(int32_t id) const {
  const BlockMetadata& m = *meta_;
  return m.tier[id] == static_cast<uint8_t>(Tier::Device) && m.committed[id] &&
         m.refCount[id] == 0 && m.deviceChildren[id] == 0;
}

bool BlockManager::hostEvictable(int32_t id) const {
  const BlockMetadata& m = *meta_;
  return m.tier[id] == static_cast<uint8_t>(Tier::Host) && m.refCount[id] == 0 &&
         m.cachedChildren[id] == 0;
}

void BlockManager::refreshHeaps(int32_t id) {
  // A block joining a heap that the block now leaving it (leaving_, set
  // while a victim is dropped or demoted) still sits in takes its place.
  const bool device = deviceEvictable(id);
  if (device && !deviceHeap_.contains(id)) {
    if (leaving_ != kNoBlock && leaving_ != id && deviceHeap_.contains(leaving_)) {
      deviceHeap_.replace(leaving_, id);
    } else {
      deviceHeap_.push(id);
    }
  }
  if (!device && deviceHeap_.contains(id)) deviceHeap_.remove(id);
  const bool host = hostEvictable(id);
  if (host && !hostHeap_.contains(id)) {
    if (leaving_ != kNoBlock && leaving_ != id && hostHeap_.contains(leaving_)) {
      hostHeap_.replace(leaving_, id);
    } else {
      hostHeap_.push(id);
    }
  }
  if (!host && hostHeap_.contains(id)) hostHeap_.remove(id);
}

void BlockManager::setTier(int32_t id, Tier to) {
  BlockMetadata& m = *meta_;
  const Tier from = static_cast<Tier>(m.tier[id]);
  m.tier[id] = static_cast<uint8_t>(to);
  const int32_t parentId = m.parent[id];
  if (m.committed[id] && parentId != kNoBlock) {
    if (from == Tier::Device) --m.deviceChildren[parentId];
    if (to == Tier::Device) ++m.deviceChildren[parentId];
    refreshHeaps(parentId);
  }
  refreshHeaps(id);
}

void BlockManager::linkChild(int32_t parentId, int32_t child) {
  tree_.link(*meta_, parentId, child);
  if (parentId != kNoBlock) refreshHeaps(parentId);
}

void BlockManager::unlinkChild(int32_t child) {
  const int32_t parentId = tree_.unlink(*meta_, child);
  if (parentId != kNoBlock) refreshHeaps(parentId);
}

}  // namespace cachesage
