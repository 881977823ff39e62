// BlockManager, first half: configuration, lookup and the request lifecycle
// (admit, append, commit, release), plus the stamps, copies and events those
// operations record. Where blocks live and the order they leave in (scores,
// the explicit tier moves, eviction, pins) is block_manager_tiers.cpp; the
// structural check is invariants.cpp; fields and tree links are
// block_metadata.
//
// Slightly over ~400 lines on purpose: admit, append, commit and release
// decide through the private steps of block_manager_tiers.cpp (pin, unpin,
// allocateDeviceSlot, loadBlock, setTier, freeBlock), and the order of those
// calls is the contract the TypeScript reference model reproduces exactly.
// Kept together, one request operation reads top to bottom in one file.
#include "block_manager.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

namespace cachesage {

namespace {

constexpr int32_t kMaxBlockIds = 1 << 28;
constexpr int32_t kMaxBlockSize = 1 << 20;
constexpr int32_t kMaxClasses = 1 << 24;
// Released requests' map nodes kept for reuse (BlockManager::spareRequests_).
constexpr size_t kSpareRequests = 256;

uint64_t agentBit(int32_t agent) {
  return agent < 0 ? 0 : (uint64_t{1} << agent);
}

}  // namespace

static BlockManagerConfig validated(const BlockManagerConfig& c) {
  if (c.blockSize < 1 || c.blockSize > kMaxBlockSize) {
    throw std::out_of_range("blockSize must be in [1, " + std::to_string(kMaxBlockSize) +
                            "], got " + std::to_string(c.blockSize));
  }
  if (c.bytesPerBlock < 0) {
    throw std::out_of_range("bytesPerBlock must be >= 0, got " + std::to_string(c.bytesPerBlock));
  }
  if (c.deviceBlocks < 1) {
    throw std::out_of_range("deviceBlocks must be >= 1, got " + std::to_string(c.deviceBlocks));
  }
  if (c.hostBlocks < 0) {
    throw std::out_of_range("hostBlocks must be >= 0, got " + std::to_string(c.hostBlocks));
  }
  if (c.maxClasses < 0 || c.maxClasses > kMaxClasses) {
    throw std::out_of_range("maxClasses must be in [0, " + std::to_string(kMaxClasses) + "], got " +
                            std::to_string(c.maxClasses));
  }
  if (static_cast<int64_t>(c.deviceBlocks) + c.hostBlocks > kMaxBlockIds) {
    throw std::out_of_range("deviceBlocks + hostBlocks must be <= " + std::to_string(kMaxBlockIds));
  }
  return c;
}

BlockManager::BlockManager(const BlockManagerConfig& config)
    : config_(validated(config)),
      meta_(std::make_shared<BlockMetadata>(config.deviceBlocks + config.hostBlocks,
                                            config.maxClasses)),
      index_(config.deviceBlocks + config.hostBlocks),
      deviceHeap_(config.deviceBlocks + config.hostBlocks, config.maxClasses,
                  meta_->score.data(), meta_->lastAccess.data(), meta_->scoreClass.data(),
                  meta_->classScore.data()),
      hostHeap_(config.deviceBlocks + config.hostBlocks, config.maxClasses, meta_->score.data(),
                meta_->lastAccess.data(), meta_->scoreClass.data(), meta_->classScore.data()),
      tree_(config.deviceBlocks + config.hostBlocks),
      copies_(config.deviceBlocks, config.hostBlocks) {
  const int32_t n = numBlockIds();
  // LIFO stacks that pop 0 first.
  freeIds_.reserve(n);
  for (int32_t i = n - 1; i >= 0; --i) freeIds_.push_back(i);
  freeDeviceSlots_.reserve(config_.deviceBlocks);
  for (int32_t i = config_.deviceBlocks - 1; i >= 0; --i) freeDeviceSlots_.push_back(i);
  freeHostSlots_.reserve(config_.hostBlocks);
  for (int32_t i = config_.hostBlocks - 1; i >= 0; --i) freeHostSlots_.push_back(i);
}

// ---------------------------------------------------------------- checks

std::string BlockManager::requestName(int64_t requestId) {
  return "request " + std::to_string(requestId);
}

BlockManager::Request& BlockManager::requestOrThrow(int64_t requestId, const char* op) {
  auto it = requests_.find(requestId);
  if (it == requests_.end()) {
    throw std::invalid_argument(std::string(op) + ": unknown " + requestName(requestId));
  }
  return it->second;
}

const BlockManager::Request& BlockManager::requestOrThrow(int64_t requestId, const char* op) const {
  auto it = requests_.find(requestId);
  if (it == requests_.end()) {
    throw std::invalid_argument(std::string(op) + ": unknown " + requestName(requestId));
  }
  return it->second;
}

const std::vector<int32_t>& BlockManager::requestBlocks(int64_t requestId) const {
  return requestOrThrow(requestId, "requestBlocks").blocks;
}

void BlockManager::checkBlockId(int32_t id, const char* op) const {
  if (id < 0 || id >= numBlockIds()) {
    throw std::out_of_range(std::string(op) + ": block id " + std::to_string(id) +
                            " is out of range [0, " + std::to_string(numBlockIds()) + ")");
  }
  if (meta_->tier[id] == static_cast<uint8_t>(Tier::Free)) {
    throw std::invalid_argument(std::string(op) + ": block id " + std::to_string(id) +
                                " is not allocated");
  }
}

int32_t BlockManager::blocksFor(int32_t tokens) const {
  return static_cast<int32_t>((static_cast<int64_t>(tokens) + config_.blockSize - 1) /
                              config_.blockSize);
}

static void checkTags(const RequestTags& tags) {
  if (tags.workload < -1) throw std::out_of_range("workload must be >= -1");
  if (tags.session < -1) throw std::out_of_range("session must be >= -1");
  if (tags.agent < -1 || tags.agent > kMaxAgentBit) {
    throw std::out_of_range("agent must be in [-1, " + std::to_string(kMaxAgentBit) + "], got " +
                            std::to_string(tags.agent));
  }
}

// ---------------------------------------------------------------- lookup

LookupResult BlockManager::lookup(const uint64_t* hashes, int32_t count) const {
  LookupResult result;
  lookupInto(hashes, count, result);
  return result;
}

void BlockManager::lookupInto(const uint64_t* hashes, int32_t count, LookupResult& result) const {
  if (count < 0) throw std::out_of_range("lookup: count must be >= 0");
  if (count > numBlockIds()) {
    throw std::out_of_range("lookup: " + std::to_string(count) +
                            " blocks exceed the manager's capacity of " +
                            std::to_string(numBlockIds()) + " blocks");
  }
  result.deviceBlocks = 0;
  result.hostBlocks = 0;
  result.ids.clear();
  for (int32_t i = 0; i < count; ++i) index_.prefetch(hashes[i]);
  int32_t previous = kNoBlock;
  for (int32_t i = 0; i < count; ++i) {
    int32_t id = index_.find(hashes[i]);
    // A cached block only extends the match when it sits under the previous
    // hit: callers' hashes may repeat or fail to chain.
    if (id < 0 || meta_->parent[id] != previous) break;
    previous = id;
    result.ids.push_back(id);
    if (meta_->tier[id] == static_cast<uint8_t>(Tier::Device)) {
      // The device set is closed under "parent of", so device hits lead.
      ++result.deviceBlocks;
    } else {
      ++result.hostBlocks;
    }
  }
}

// ---------------------------------------------------------------- requests

int32_t BlockManager::deviceAvailable() const {
  int32_t used = config_.deviceBlocks - static_cast<int32_t>(freeDeviceSlots_.size());
  return static_cast<int32_t>(freeDeviceSlots_.size()) + (used - pinnedDevice_);
}

bool BlockManager::admit(int64_t requestId, const uint64_t* hashes, int32_t hashCount,
                         int32_t numTokens, const RequestTags& tags, AdmitResult& out) {
  // Argument checks come before state checks, here and in every operation.
  if (requestId < 0) throw std::out_of_range("admit: request id must be >= 0");
  if (numTokens < 1) throw std::out_of_range("admit: numTokens must be >= 1");
  if (hashCount < 0 || hashCount > numTokens / config_.blockSize) {
    throw std::out_of_range("admit: " + std::to_string(hashCount) + " block hashes for " +
                            std::to_string(numTokens) + " tokens (at most " +
                            std::to_string(numTokens / config_.blockSize) + " full blocks)");
  }
  checkTags(tags);
  const int32_t needed = blocksFor(numTokens);
  if (needed > config_.deviceBlocks) {
    throw std::out_of_range("admit: " + requestName(requestId) + " needs " +
                            std::to_string(needed) + " blocks but the device tier holds " +
                            std::to_string(config_.deviceBlocks));
  }
  if (requests_.count(requestId)) {
    throw std::invalid_argument("admit: " + requestName(requestId) + " is already admitted");
  }

  // Refused before, and nothing changed since: refused again (admit is a
  // pure function of the state and the prompt until it succeeds).
  if (refusedTokens_ == numTokens && refusedGeneration_ == generation_ &&
      refusedHashes_.size() == static_cast<size_t>(hashCount) &&
      std::equal(refusedHashes_.begin(), refusedHashes_.end(), hashes)) {
    return false;
  }
  LookupResult& hit = admitHit_;
  lookupInto(hashes, hashCount, hit);
  int32_t unpinnedHits = 0;
  for (int32_t i = 0; i < hit.deviceBlocks; ++i) {
    if (meta_->refCount[hit.ids[i]] == 0) ++unpinnedHits;
  }
  if (needed - hit.deviceBlocks > deviceAvailable() - unpinnedHits) {
    refusedGeneration_ = generation_;
    refusedTokens_ = numTokens;
    refusedHashes_.assign(hashes, hashes + hashCount);
    return false;
  }

  ++generation_;
  clock_ += 1;
  for (int32_t i = 0; i < hit.deviceBlocks + hit.hostBlocks; ++i) pin(hit.ids[i]);
  std::unordered_map<int64_t, Request>::node_type node;
  if (!spareRequests_.empty()) {
    node = std::move(spareRequests_.back());
    spareRequests_.pop_back();
  } else {
    // A map hands out a fresh node only through an insertion.
    node = requests_.extract(requests_.emplace(requestId, Request{}).first);
  }
  node.key() = requestId;
  Request& request = node.mapped();
  request.blocks.clear();
  request.blocks.reserve(needed);
  for (int32_t i = 0; i < hit.deviceBlocks; ++i) {
    touch(hit.ids[i], tags);
    request.blocks.push_back(hit.ids[i]);
  }
  for (int32_t i = hit.deviceBlocks; i < hit.deviceBlocks + hit.hostBlocks; ++i) {
    int32_t id = hit.ids[i];
    loadBlock(id, allocateDeviceSlot());
    touch(id, tags);
    request.blocks.push_back(id);
  }
  for (int32_t i = hit.deviceBlocks + hit.hostBlocks; i < needed; ++i) {
    request.blocks.push_back(newDeviceBlock(i, i < hashCount ? hashes[i] : 0, tags));
  }
  request.hashes.assign(hashes, hashes + hashCount);
  request.numTokens = numTokens;
  request.committed = hit.deviceBlocks + hit.hostBlocks;
  request.tags = tags;

  out.cachedDeviceTokens =
      std::min(numTokens, hit.deviceBlocks * config_.blockSize);
  out.loadedBlocks = hit.hostBlocks;
  out.blockIds = request.blocks;
  out.blockTable.resize(request.blocks.size());
  for (size_t i = 0; i < request.blocks.size(); ++i) {
    out.blockTable[i] = meta_->slot[request.blocks[i]];
  }
  requests_.insert(std::move(node));
  return true;
}

bool BlockManager::append(int64_t requestId, int32_t numTokens, const uint64_t* hashes,
                          int32_t hashCount, std::vector<int32_t>& newBlockIds) {
  if (numTokens < 0) throw std::out_of_range("append: numTokens must be >= 0");
  if (hashCount < 0) throw std::out_of_range("append: hash count must be >= 0");
  Request& request = requestOrThrow(requestId, "append");
  ++generation_;
  int64_t total = static_cast<int64_t>(request.numTokens) + numTokens;
  if (total > INT32_MAX) {
    throw std::out_of_range("append: " + requestName(requestId) + " would exceed 2^31 - 1 tokens");
  }
  if (total > static_cast<int64_t>(config_.deviceBlocks) * config_.blockSize) {
    throw std::out_of_range("append: " + requestName(requestId) + " would need more blocks than " +
                            "the device tier holds (" + std::to_string(config_.deviceBlocks) + ")");
  }
  int64_t fullBlocks = total / config_.blockSize;
  if (static_cast<int64_t>(request.hashes.size()) + hashCount > fullBlocks) {
    throw std::out_of_range("append: " + std::to_string(request.hashes.size() + hashCount) +
                            " block hashes but only " + std::to_string(fullBlocks) +
                            " full blocks");
  }
  const int32_t needed = blocksFor(static_cast<int32_t>(total)) -
                         static_cast<int32_t>(request.blocks.size());
  if (needed > deviceAvailable()) return false;

  clock_ += 1;
  const int32_t firstNewHash = static_cast<int32_t>(request.hashes.size());
  request.hashes.insert(request.hashes.end(), hashes, hashes + hashCount);
  for (int32_t i = firstNewHash; i < static_cast<int32_t>(request.blocks.size()) &&
                                 i < static_cast<int32_t>(request.hashes.size());
       ++i) {
    meta_->hash[request.blocks[i]] = request.hashes[i];
  }
  newBlockIds.clear();
  for (int32_t k = 0; k < needed; ++k) {
    int32_t position = static_cast<int32_t>(request.blocks.size());
    uint64_t hash = position < static_cast<int32_t>(request.hashes.size())
                        ? request.hashes[position]
                        : 0;
    int32_t id = newDeviceBlock(position, hash, request.tags);
    request.blocks.push_back(id);
    newBlockIds.push_back(id);
  }
  request.numTokens = static_cast<int32_t>(total);
  return true;
}

int32_t BlockManager::newDeviceBlock(int32_t position, uint64_t hash, const RequestTags& tags) {
  int32_t slot = allocateDeviceSlot();
  int32_t id = freeIds_.back();
  freeIds_.pop_back();
  BlockMetadata& m = *meta_;
  m.tier[id] = static_cast<uint8_t>(Tier::Device);
  m.slot[id] = slot;
  m.committed[id] = 0;
  m.refCount[id] = 1;
  ++pinnedDevice_;
  m.depth[id] = position;
  m.hash[id] = hash;
  m.parent[id] = kNoBlock;
  m.workload[id] = tags.workload;
  m.session[id] = tags.session;
  m.agentMask[id] = 0;
  m.accessCount[id] = 0;
  // A score or class set on the id while it was free does not carry over.
  m.score[id] = 0.0f;
  m.scoreClass[id] = -1;
  touch(id, tags);
  return id;
}

const std::vector<int32_t>& BlockManager::commit(int64_t requestId, int32_t numBlocks) {
  if (numBlocks < 0) throw std::out_of_range("commit: numBlocks must be >= 0");
  Request& request = requestOrThrow(requestId, "commit");
  if (numBlocks > static_cast<int32_t>(request.hashes.size())) {
    throw std::out_of_range("commit: " + std::to_string(numBlocks) + " blocks but only " +
                            std::to_string(request.hashes.size()) +
                            " have known hashes in " + requestName(requestId));
  }
  if (numBlocks <= request.committed) return request.blocks;
  ++generation_;

  // Validate the whole chain: a cached block with the same hash must sit
  // under the same parent, and the new hashes must not repeat. The new
  // hashes go into the index as they are checked, so a repeat finds its
  // earlier copy there (an uncommitted block: only this commit's are);
  // when something is wrong they come out again and refuseCommit names
  // the first offender, the manager as it was.
  int32_t previous = request.committed > 0 ? request.blocks[request.committed - 1] : kNoBlock;
  bool consistent = true;
  commitHashes_.clear();
  // What the index held for each hash before this commit.
  commitExisting_.clear();
  for (int32_t i = request.committed; i < numBlocks; ++i) {
    const uint64_t hash = request.hashes[i];
    const int32_t existing = index_.find(hash);
    if (existing >= 0) {
      if (!meta_->committed[existing] || meta_->parent[existing] != previous) {
        consistent = false;
        break;
      }
      previous = existing;
    } else {
      const int32_t own = request.blocks[i];
      index_.insert(hash, own);
      commitHashes_.push_back(hash);
      previous = own;
    }
    commitExisting_.push_back(existing);
  }
  if (!consistent) {
    for (uint64_t hash : commitHashes_) index_.erase(hash);
    refuseCommit(request, requestId, numBlocks);
  }

  clock_ += 1;
  for (int32_t i = request.committed; i < numBlocks; ++i) {
    const int32_t own = request.blocks[i];
    const uint64_t hash = request.hashes[i];
    const int32_t parentId = i > 0 ? request.blocks[i - 1] : kNoBlock;
    const int32_t existing = commitExisting_[i - request.committed];
    if (existing < 0) {
      meta_->hash[own] = hash;
      meta_->committed[own] = 1;
      linkChild(parentId, own);
      touch(own, request.tags);
      recordEvent(EventKind::Stored, own);
      continue;
    }
    // Share the cached block instead of keeping a duplicate.
    if (meta_->tier[existing] == static_cast<uint8_t>(Tier::Device)) {
      pin(existing);
      unpin(own);
      freeBlock(own);
    } else {
      // The cached copy is on host; the request's device slot already holds
      // the same bytes, so the cached block takes that slot with no copy.
      // A host block with cached children is not in the host heap.
      if (hostHeap_.contains(existing)) hostHeap_.remove(existing);
      freeHostSlots_.push_back(meta_->slot[existing]);
      const int32_t slot = meta_->slot[own];
      unpin(own);
      meta_->tier[own] = static_cast<uint8_t>(Tier::Free);
      meta_->slot[own] = -1;
      meta_->reset(own);
      freeIds_.push_back(own);
      meta_->slot[existing] = slot;
      setTier(existing, Tier::Device);
      pin(existing);
      recordEvent(EventKind::Loaded, existing);
    }
    touch(existing, request.tags);
    request.blocks[i] = existing;
  }
  request.committed = numBlocks;
  return request.blocks;
}

void BlockManager::refuseCommit(const Request& request, int64_t requestId, int32_t numBlocks) const {
  int32_t previous = request.committed > 0 ? request.blocks[request.committed - 1] : kNoBlock;
  std::unordered_set<uint64_t> inserting;
  for (int32_t i = request.committed; i < numBlocks; ++i) {
    int32_t existing = index_.find(request.hashes[i]);
    if (existing < 0 && !inserting.insert(request.hashes[i]).second) {
      throw std::invalid_argument("commit: block hash at position " + std::to_string(i) +
                                  " of " + requestName(requestId) +
                                  " repeats an earlier block of the same commit (inconsistent "
                                  "hashes)");
    }
    if (existing >= 0) {
      if (meta_->parent[existing] != previous) {
        throw std::invalid_argument("commit: block hash at position " + std::to_string(i) +
                                    " of " + requestName(requestId) +
                                    " is cached under a different prefix (hash collision or "
                                    "inconsistent hashes)");
      }
      previous = existing;
    } else {
      previous = request.blocks[i];
    }
  }
  throw std::logic_error("internal: commit was refused but its batch is consistent");
}

void BlockManager::release(int64_t requestId) {
  auto it = requests_.find(requestId);
  if (it == requests_.end()) {
    throw std::invalid_argument("release: unknown " + requestName(requestId) +
                                " (never admitted or already released)");
  }
  ++generation_;
  clock_ += 1;
  const std::vector<int32_t>& blocks = it->second.blocks;
  for (size_t k = blocks.size(); k-- > 0;) {
    const int32_t id = blocks[k];
    meta_->lastAccess[id] = clock_;
    unpin(id);
    if (!meta_->committed[id]) freeBlock(id);
  }
  // Kept for the next admit, at most kSpareRequests of them: past that
  // (after a burst of requests in flight) the node is freed.
  if (spareRequests_.size() < kSpareRequests) {
    spareRequests_.push_back(requests_.extract(it));
  } else {
    requests_.erase(it);
  }
}

// ---------------------------------------------------------------- records

void BlockManager::touch(int32_t id, const RequestTags& tags) {
  BlockMetadata& m = *meta_;
  m.lastAccess[id] = clock_;
  if (m.accessCount[id]++ > 0) {
    if (m.workload[id] != tags.workload) m.workload[id] = -1;
    if (m.session[id] != tags.session) m.session[id] = -1;
  }
  m.agentMask[id] |= agentBit(tags.agent);
  if (deviceHeap_.contains(id)) deviceHeap_.update(id);
  if (hostHeap_.contains(id)) hostHeap_.update(id);
}

void BlockManager::recordCopy(Tier srcTier, int32_t srcSlot, Tier dstTier, int32_t dstSlot) {
  copies_.record(srcTier, srcSlot, dstTier, dstSlot);
}

void BlockManager::takeCopyPlan(CopyPlan& out) { copies_.take(out); }

void BlockManager::recordEvent(EventKind kind, int32_t id) {
  if (recordEvents_) events_.record(kind, id, *meta_);
}

void BlockManager::setRecordEvents(bool on) {
  recordEvents_ = on;
  if (!on) events_.clear();
}

void BlockManager::takeEvents(Events& out) { events_.take(out); }

}  // namespace cachesage
