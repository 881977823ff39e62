// Paged KV block manager: the policy-agnostic core.
//
// Plain C++ with no Node or N-API includes; the N-API binding (native/napi)
// and the C ABI (native/capi) are thin layers over this class.
//
// Model
// -----
// * A block holds `blockSize` tokens of KV, `bytesPerBlock` bytes. Two tiers:
//   device (scarce, `deviceBlocks` slots) and host (`hostBlocks` slots, 0 = no
//   host tier). A block lives in exactly one tier at a time (exclusive tiers).
// * Block ids are logical and stable while a block exists: a demoted or loaded
//   block keeps its id and changes tier and slot. Ids range over
//   [0, deviceBlocks + hostBlocks); every metadata array is indexed by id.
//   Engines address KV memory by (tier, slot); block tables hold device slots.
// * A full block is *committed* when its hash enters the hash index. Equal
//   hash means equal prefix (the hash chains the parent's hash), so the index
//   is a radix tree over blocks: `parent[id]` is the block before it.
// * Invariants (checked by checkInvariants(), in invariants.cpp):
//     - a committed device block's parent is on device; a host block's parent
//       is on device or host (the cached set and the device set are both
//       closed under "parent of");
//     - refCount >= 0; a block with refCount > 0 is never evicted, demoted or
//       dropped; a running request's blocks are all on device;
//     - a block is evictable only when no cached block extends it: device
//       eviction needs no device children, dropping needs no children at all;
//     - occupied slots per tier never exceed the tier's capacity, every slot
//       and id is either free or owned by exactly one block.
//
// Determinism (the TypeScript reference model reproduces all of it exactly):
// * Free ids and free slots are LIFO stacks; a fresh manager pops 0 first.
// * Eviction order is the total order on (effective score, lastAccess, id),
//   lowest first. A block's effective score is its score class's score when
//   it has a class (scoreClass >= 0), else its own score. Scores default to
//   0 and blocks start classless, so a manager nobody scores is LRU.
// * lastAccess is a logical clock: every mutating request call (admit,
//   append, commit, release) ticks it once and stamps the blocks it touches.
//
// Errors: misuse throws std::invalid_argument / std::out_of_range /
// std::logic_error *before* any state changes. Running out of capacity is a
// normal result (admit/append return false), never an exception.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "block_metadata.h"
#include "copy_plan.h"
#include "events.h"
#include "eviction_queue.h"
#include "hash_index.h"
#include "tier.h"

namespace cachesage {

struct BlockManagerConfig {
  int32_t blockSize = 16;
  int64_t bytesPerBlock = 0;
  int32_t deviceBlocks = 0;
  int32_t hostBlocks = 0;
  // Score classes available to policies that score groups of blocks.
  int32_t maxClasses = 1 << 16;
};

// Who a request belongs to; -1 means untagged.
struct RequestTags {
  int32_t workload = -1;
  int32_t agent = -1;  // 0..63, the bit set in agentMask
  int32_t session = -1;
};

constexpr int32_t kMaxAgentBit = 63;

struct LookupResult {
  int32_t deviceBlocks = 0;  // leading matched blocks on device
  int32_t hostBlocks = 0;    // matched blocks after those, on host
  std::vector<int32_t> ids;  // matched block ids, in prompt order
};

struct AdmitResult {
  int32_t cachedDeviceTokens = 0;      // leading prompt tokens already on device
  int32_t loadedBlocks = 0;            // host blocks loaded for this request
  std::vector<int32_t> blockIds;       // one per block of the request
  std::vector<int32_t> blockTable;     // device slot of each block
};

class BlockManager {
 public:
  explicit BlockManager(const BlockManagerConfig& config);

  const BlockManagerConfig& config() const { return config_; }
  int32_t numBlockIds() const { return config_.deviceBlocks + config_.hostBlocks; }
  const std::shared_ptr<BlockMetadata>& metadata() const { return meta_; }
  double clock() const { return clock_; }

  // Longest cached prefix of `hashes` (full-block hashes in prompt order).
  // Pure: touches no state.
  LookupResult lookup(const uint64_t* hashes, int32_t count) const;

  // Admits request `requestId` with `numTokens` prompt tokens, of which the
  // first `hashCount` full blocks have the given hashes (hashCount <=
  // numTokens / blockSize). Pins the cached prefix, loads its host part to
  // device, allocates device blocks for the rest (evicting by score, demoting
  // to host before dropping). Returns false, with no state change, when the
  // device tier cannot hold the request now.
  bool admit(int64_t requestId, const uint64_t* hashes, int32_t hashCount,
             int32_t numTokens, const RequestTags& tags, AdmitResult& out);

  // Records hashes for blocks that became full and grows the request by
  // `numTokens` tokens, allocating blocks as needed. `newBlockIds` receives
  // the ids appended to the block table. Returns false, with no state
  // change, when the device tier cannot hold the new blocks.
  bool append(int64_t requestId, int32_t numTokens, const uint64_t* hashes,
              int32_t hashCount, std::vector<int32_t>& newBlockIds);

  // Commits the request's first `numBlocks` blocks into the hash index (the
  // engine has computed them). A block whose hash is already cached is
  // replaced in the request by the cached one (shared, not duplicated).
  // Returns the request's block ids after the commit, valid until the
  // request's next call (a reference: a commit allocates nothing).
  const std::vector<int32_t>& commit(int64_t requestId, int32_t numBlocks);

  // Unpins the request's blocks: committed blocks stay cached (lazy
  // eviction), uncommitted ones are freed.
  void release(int64_t requestId);

  bool hasRequest(int64_t requestId) const { return requests_.count(requestId) != 0; }
  const std::vector<int32_t>& requestBlocks(int64_t requestId) const;
  int32_t numRequests() const { return static_cast<int32_t>(requests_.size()); }

  // Scores: one float per id (finite). Lower is evicted first.
  void setScores(const int32_t* ids, const float* scores, int32_t count);
  void setAllScores(const float* scores, int32_t count);
  // Score classes: files blocks under classes (-1: none), and sets the
  // scores of classes. A class score change costs O(log classes), however
  // many blocks the class holds. A block freed and allocated again starts
  // classless.
  void setScoreClasses(const int32_t* ids, const int32_t* classes, int32_t count);
  void setClassScores(const int32_t* classes, const float* scores, int32_t count);

  // Explicit actions. Ids that are not eligible now (pinned, with children
  // in the way, in the wrong tier) are skipped; ids that are out of range or
  // free throw. Each returns how many blocks it moved.
  int32_t evict(Tier tier, int32_t count);        // by score, device demotes first
  int32_t demote(const int32_t* ids, int32_t count);
  int32_t drop(const int32_t* ids, int32_t count);
  // Host -> device, never by evicting a device block whose (score,
  // lastAccess, id) orders after the block being loaded.
  int32_t load(const int32_t* ids, int32_t count);

  int32_t usedBlocks(Tier tier) const;
  int32_t pinnedDeviceBlocks() const { return pinnedDevice_; }
  int32_t evictableBlocks(Tier tier) const;

  void takeCopyPlan(CopyPlan& out);
  void takeEvents(Events& out);
  // The queued events, to copy out before clearEvents().
  const Events& queuedEvents() const { return events_.pending(); }
  void clearEvents() { events_.clear(); }
  const CopyPlan& pendingCopyPlan() const { return copies_.pending(); }
  size_t pendingEvents() const { return events_.size(); }
  // Whether block events are recorded (on by default). An owner that reads
  // none turns them off: nothing is queued from then on, and what was
  // queued is dropped. Decisions never depend on it.
  void setRecordEvents(bool on);

  // Full structural check; returns "" when every invariant holds, otherwise
  // a description of the first broken one. O(blocks).
  std::string checkInvariants() const;

 private:
  struct Request {
    std::vector<int32_t> blocks;
    std::vector<uint64_t> hashes;  // known full-block hashes, in order
    int32_t numTokens = 0;
    int32_t committed = 0;  // leading blocks committed
    RequestTags tags;
  };

  static std::string requestName(int64_t requestId);
  Request& requestOrThrow(int64_t requestId, const char* op);
  const Request& requestOrThrow(int64_t requestId, const char* op) const;
  void checkBlockId(int32_t id, const char* op) const;
  int32_t blocksFor(int32_t tokens) const;
  // lookup() into `result`, reusing its vector's capacity.
  void lookupInto(const uint64_t* hashes, int32_t count, LookupResult& result) const;

  // Free device slots plus unpinned device blocks (all of them can be
  // evicted, leaf first, since a pinned block's ancestors are pinned too).
  int32_t deviceAvailable() const;
  int32_t allocateDeviceSlot();  // evicts when no slot is free
  int32_t newDeviceBlock(int32_t position, uint64_t hash, const RequestTags& tags);
  void freeBlock(int32_t id);
  void pin(int32_t id);
  void unpin(int32_t id);
  void setScore(int32_t id, float score);

  // Eviction machinery.
  bool deviceEvictable(int32_t id) const;
  bool hostEvictable(int32_t id) const;
  void refreshHeaps(int32_t id);
  void evictOneFromDevice();
  void prefetchBlock(int32_t id) const;
  bool makeHostRoomFor(int32_t victim);
  void demoteBlock(int32_t id);
  void dropSubtree(int32_t id);
  void dropBlock(int32_t id);
  void loadBlock(int32_t id, int32_t deviceSlot);

  // Tree links (BlockTree), plus the heap refreshes they imply.
  void linkChild(int32_t parentId, int32_t child);
  void unlinkChild(int32_t child);
  void setTier(int32_t id, Tier to);

  // Throws the first inconsistency of a commit batch, in position order.
  void refuseCommit(const Request& request, int64_t requestId, int32_t numBlocks) const;

  void touch(int32_t id, const RequestTags& tags);
  void recordCopy(Tier srcTier, int32_t srcSlot, Tier dstTier, int32_t dstSlot);
  void recordEvent(EventKind kind, int32_t id);

  BlockManagerConfig config_;
  std::shared_ptr<BlockMetadata> meta_;
  HashIndex index_;
  EvictionQueue deviceHeap_;
  EvictionQueue hostHeap_;
  std::vector<int32_t> freeIds_;
  std::vector<int32_t> freeDeviceSlots_;
  std::vector<int32_t> freeHostSlots_;
  BlockTree tree_;
  std::unordered_map<int64_t, Request> requests_;
  // Map nodes of released requests, their vectors' capacity kept: an admit
  // reuses one instead of allocating a node and two vectors.
  std::vector<std::unordered_map<int64_t, Request>::node_type> spareRequests_;
  // Scratch of admit's prefix lookup (the matched ids).
  LookupResult admitHit_;
  // Bumped by every call that may change what an admit finds (the index,
  // tiers, pins, free slots): admit, append, commit, release, evict,
  // demote, drop, load. Scores, events and copy plans leave it.
  uint64_t generation_ = 0;
  // The last refused admit's prompt and the generation it was refused at:
  // the same prompt asked again before anything changed is refused again
  // without its lookup (a scheduler retries its queue's head every step).
  uint64_t refusedGeneration_ = 0;
  int32_t refusedTokens_ = -1;
  std::vector<uint64_t> refusedHashes_;
  int32_t pinnedDevice_ = 0;
  double clock_ = 0;
  CopyPlanBuilder copies_;
  EventQueue events_;
  bool recordEvents_ = true;
  // Scratch of commit's duplicate check, reused so a commit allocates nothing.
  std::vector<uint64_t> commitHashes_;
  std::vector<int32_t> commitExisting_;
  // The block being dropped or demoted while its parent's heap entry is
  // refreshed: a parent that becomes evictable takes its place in the heap
  // (EvictionQueue::replace). kNoBlock otherwise.
  int32_t leaving_ = kNoBlock;
};

}  // namespace cachesage
