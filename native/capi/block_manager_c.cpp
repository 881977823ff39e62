// The C ABI over cachesage::BlockManager: the cs_bm_* entry points
// (cachesage.h documents them; capi_util.h the error handling they share).
//
// Longer than ~400 lines on purpose: one file per exposed class, as in
// native/napi, and this class exposes 31 entry points. Each is already thin
// (a guard, the buffer checks, one core call), so splitting would put one
// handle's ABI in two files without making any entry point shorter.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_manager.h"
#include "cachesage.h"
#include "capi_util.h"

using namespace cachesage::capi;
using cachesage::Tier;

namespace {

int64_t blocksFor(int64_t tokens, int32_t blockSize) {
  return tokens <= 0 ? 0 : (tokens + blockSize - 1) / blockSize;
}

void appendEvents(cachesage::Events& to, const cachesage::Events& from) {
  const size_t n = to.block.size() + from.block.size();
  // Reserving all four first keeps the merge all-or-nothing under bad_alloc.
  to.kind.reserve(n);
  to.block.reserve(n);
  to.hash.reserve(n);
  to.tier.reserve(n);
  to.kind.insert(to.kind.end(), from.kind.begin(), from.kind.end());
  to.block.insert(to.block.end(), from.block.begin(), from.block.end());
  to.hash.insert(to.hash.end(), from.hash.begin(), from.hash.end());
  to.tier.insert(to.tier.end(), from.tier.begin(), from.tier.end());
}

}  // namespace

struct cs_block_manager {
  explicit cs_block_manager(const cachesage::BlockManagerConfig& config) : core(config) {}

  cachesage::BlockManager core;
  mutable char error[kErrorSize] = {};
  // The core only hands events out by moving them all, so events a caller
  // could not take yet are held here, oldest first.
  cachesage::Events pending;
  // Taken from the core but not yet merged into `pending` (a merge that
  // ran out of memory leaves them here rather than losing them).
  cachesage::Events incoming;
  cachesage::CopyPlan plan;

  void gatherEvents() {
    if (incoming.block.empty()) {
      if (pending.block.empty()) {
        core.takeEvents(pending);
        return;
      }
      core.takeEvents(incoming);
      if (incoming.block.empty()) return;
    }
    appendEvents(pending, incoming);
    incoming.clear();
  }

  // Writes the ids and device slots of `ids` to the optional outputs.
  void writeBlocks(const std::vector<int32_t>& ids, int32_t* blockIds, int32_t* blockTable) const {
    const int32_t* slot = core.metadata()->slot.data();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (blockIds != nullptr) blockIds[i] = ids[i];
      if (blockTable != nullptr) blockTable[i] = slot[ids[i]];
    }
  }
};

namespace {

template <typename Body>
int32_t withManager(const cs_block_manager* bm, Body&& body) noexcept {
  if (bm == nullptr) return CS_ERR_INVALID_ARGUMENT;
  return guarded(bm->error, sizeof bm->error, body);
}

void requireRequest(const cs_block_manager* bm, int64_t requestId, const char* op) {
  if (!bm->core.hasRequest(requestId)) {
    throw std::invalid_argument(std::string(op) + ": unknown request " + str(requestId));
  }
}

}  // namespace

extern "C" {

cs_block_manager* cs_bm_create(const cs_config* config, char* err, size_t err_size) {
  cs_block_manager* bm = nullptr;
  guarded(err, err_size, [&]() -> int32_t {
    requireNonNull(config, "create", "config");
    cachesage::BlockManagerConfig c;
    c.blockSize = config->block_size;
    c.bytesPerBlock = config->bytes_per_block;
    c.deviceBlocks = config->device_blocks;
    c.hostBlocks = config->host_blocks;
    c.maxClasses = config->max_classes;
    bm = new cs_block_manager(c);
    return CS_OK;
  });
  return bm;
}

void cs_bm_destroy(cs_block_manager* bm) { delete bm; }

const char* cs_bm_last_error(const cs_block_manager* bm) {
  return bm == nullptr ? "cs_block_manager handle is NULL" : bm->error;
}

int32_t cs_bm_config(const cs_block_manager* bm, cs_config* out) {
  return withManager(bm, [&]() -> int32_t {
    requireNonNull(out, "config", "out");
    const cachesage::BlockManagerConfig& c = bm->core.config();
    out->bytes_per_block = c.bytesPerBlock;
    out->block_size = c.blockSize;
    out->device_blocks = c.deviceBlocks;
    out->host_blocks = c.hostBlocks;
    out->max_classes = c.maxClasses;
    return CS_OK;
  });
}

int32_t cs_bm_num_block_ids(const cs_block_manager* bm) {
  return withManager(bm, [&]() -> int32_t { return bm->core.numBlockIds(); });
}

int32_t cs_bm_clock(const cs_block_manager* bm, double* out) {
  return withManager(bm, [&]() -> int32_t {
    requireNonNull(out, "clock", "out");
    *out = bm->core.clock();
    return CS_OK;
  });
}

int32_t cs_bm_metadata(const cs_block_manager* bm, cs_metadata* out) {
  return withManager(bm, [&]() -> int32_t {
    requireNonNull(out, "metadata", "out");
    const cachesage::BlockMetadata& m = *bm->core.metadata();
    out->num_blocks = bm->core.numBlockIds();
    out->tier = m.tier.data();
    out->committed = m.committed.data();
    out->slot = m.slot.data();
    out->ref_count = m.refCount.data();
    out->last_access = m.lastAccess.data();
    out->access_count = m.accessCount.data();
    out->workload = m.workload.data();
    out->agent_mask = m.agentMask.data();
    out->session = m.session.data();
    out->depth = m.depth.data();
    out->cached_children = m.cachedChildren.data();
    out->device_children = m.deviceChildren.data();
    out->hash = m.hash.data();
    out->parent = m.parent.data();
    out->score = m.score.data();
    out->score_class = m.scoreClass.data();
    out->num_classes = bm->core.config().maxClasses;
    out->class_score = m.classScore.data();
    return CS_OK;
  });
}

int32_t cs_bm_lookup(const cs_block_manager* bm, const uint64_t* hashes, int32_t count,
                     int32_t* ids, int32_t ids_capacity, cs_lookup_result* result) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "lookup";
    requireArray(hashes, count, op, "hashes");
    requireNonNull(result, op, "result");
    requireCapacity(ids_capacity, op);
    const cachesage::LookupResult hit = bm->core.lookup(hashes, count);
    const int32_t n = static_cast<int32_t>(hit.ids.size());
    result->device_blocks = hit.deviceBlocks;
    result->host_blocks = hit.hostBlocks;
    result->num_ids = n;
    if (ids == nullptr) return CS_OK;
    if (n > ids_capacity) {
      throw BufferTooSmall(std::string(op) + ": " + str(n) + " matched ids but ids holds " +
                           str(ids_capacity));
    }
    if (n > 0) std::memcpy(ids, hit.ids.data(), sizeof(int32_t) * static_cast<size_t>(n));
    return CS_OK;
  });
}

int32_t cs_bm_admit(cs_block_manager* bm, int64_t request_id, const uint64_t* hashes,
                    int32_t hash_count, int32_t num_tokens, const cs_request_tags* tags,
                    int32_t* block_ids, int32_t* block_table, int32_t capacity,
                    cs_admit_result* result) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "admit";
    requireArray(hashes, hash_count, op, "hashes");
    requireNonNull(result, op, "result");
    requireCapacity(capacity, op);
    if (block_ids != nullptr || block_table != nullptr) {
      const int64_t needed = blocksFor(num_tokens, bm->core.config().blockSize);
      if (needed > capacity) {
        result->cached_device_tokens = 0;
        result->loaded_blocks = 0;
        result->num_blocks = static_cast<int32_t>(
            needed > std::numeric_limits<int32_t>::max() ? std::numeric_limits<int32_t>::max()
                                                         : needed);
        throw BufferTooSmall(std::string(op) + ": request " + str(request_id) + " needs " +
                             str(needed) + " block entries but the buffers hold " +
                             str(capacity));
      }
    }
    cachesage::RequestTags t;
    if (tags != nullptr) {
      t.workload = tags->workload;
      t.agent = tags->agent;
      t.session = tags->session;
    }
    cachesage::AdmitResult out;
    if (!bm->core.admit(request_id, hashes, hash_count, num_tokens, t, out)) return 0;
    result->cached_device_tokens = out.cachedDeviceTokens;
    result->loaded_blocks = out.loadedBlocks;
    result->num_blocks = static_cast<int32_t>(out.blockIds.size());
    bm->writeBlocks(out.blockIds, block_ids, block_table);
    return 1;
  });
}

int32_t cs_bm_append(cs_block_manager* bm, int64_t request_id, int32_t num_tokens,
                     const uint64_t* hashes, int32_t hash_count, int32_t* new_block_ids,
                     int32_t capacity, int32_t* num_new) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "append";
    requireArray(hashes, hash_count, op, "hashes");
    requireCapacity(capacity, op);
    if (new_block_ids != nullptr) {
      // Exact growth depends on the request's fill; this bound never
      // undercounts and the caller can compute it alone.
      const int64_t most = blocksFor(num_tokens, bm->core.config().blockSize);
      if (most > capacity) {
        throw BufferTooSmall(std::string(op) + ": appending " + str(num_tokens) +
                             " tokens can add " + str(most) +
                             " blocks but new_block_ids holds " + str(capacity));
      }
    }
    std::vector<int32_t> added;
    if (!bm->core.append(request_id, num_tokens, hashes, hash_count, added)) {
      if (num_new != nullptr) *num_new = 0;
      return 0;
    }
    if (new_block_ids != nullptr && !added.empty()) {
      std::memcpy(new_block_ids, added.data(), sizeof(int32_t) * added.size());
    }
    if (num_new != nullptr) *num_new = static_cast<int32_t>(added.size());
    return 1;
  });
}

int32_t cs_bm_commit(cs_block_manager* bm, int64_t request_id, int32_t num_blocks,
                     int32_t* block_ids, int32_t* block_table, int32_t capacity,
                     int32_t* num_blocks_out) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "commit";
    requireCapacity(capacity, op);
    // Argument checks before state checks, in the core's order.
    if (num_blocks < 0) throw std::out_of_range("commit: numBlocks must be >= 0");
    requireRequest(bm, request_id, op);
    const size_t have = bm->core.requestBlocks(request_id).size();
    if ((block_ids != nullptr || block_table != nullptr) &&
        have > static_cast<size_t>(capacity)) {
      if (num_blocks_out != nullptr) *num_blocks_out = static_cast<int32_t>(have);
      throw BufferTooSmall(std::string(op) + ": request " + str(request_id) + " has " +
                           str(static_cast<int64_t>(have)) + " blocks but the buffers hold " +
                           str(capacity));
    }
    const std::vector<int32_t>& ids = bm->core.commit(request_id, num_blocks);
    bm->writeBlocks(ids, block_ids, block_table);
    if (num_blocks_out != nullptr) *num_blocks_out = static_cast<int32_t>(ids.size());
    return CS_OK;
  });
}

int32_t cs_bm_release(cs_block_manager* bm, int64_t request_id) {
  return withManager(bm, [&]() -> int32_t {
    bm->core.release(request_id);
    return CS_OK;
  });
}

int32_t cs_bm_has_request(const cs_block_manager* bm, int64_t request_id) {
  return withManager(bm,
                     [&]() -> int32_t { return bm->core.hasRequest(request_id) ? 1 : 0; });
}

int32_t cs_bm_num_requests(const cs_block_manager* bm) {
  return withManager(bm, [&]() -> int32_t { return bm->core.numRequests(); });
}

int32_t cs_bm_request_blocks(const cs_block_manager* bm, int64_t request_id, int32_t* block_ids,
                             int32_t* block_table, int32_t capacity, int32_t* num_blocks_out) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "request_blocks";
    requireCapacity(capacity, op);
    requireRequest(bm, request_id, op);
    const std::vector<int32_t>& ids = bm->core.requestBlocks(request_id);
    if (num_blocks_out != nullptr) *num_blocks_out = static_cast<int32_t>(ids.size());
    if ((block_ids != nullptr || block_table != nullptr) &&
        ids.size() > static_cast<size_t>(capacity)) {
      throw BufferTooSmall(std::string(op) + ": request " + str(request_id) + " has " +
                           str(static_cast<int64_t>(ids.size())) +
                           " blocks but the buffers hold " + str(capacity));
    }
    bm->writeBlocks(ids, block_ids, block_table);
    return CS_OK;
  });
}

int32_t cs_bm_set_scores(cs_block_manager* bm, const int32_t* ids, const float* scores,
                         int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(ids, count, "set_scores", "ids");
    requireArray(scores, count, "set_scores", "scores");
    bm->core.setScores(ids, scores, count);
    return CS_OK;
  });
}

int32_t cs_bm_set_all_scores(cs_block_manager* bm, const float* scores, int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(scores, count, "set_all_scores", "scores");
    bm->core.setAllScores(scores, count);
    return CS_OK;
  });
}

int32_t cs_bm_set_score_classes(cs_block_manager* bm, const int32_t* ids, const int32_t* classes,
                                int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(ids, count, "set_score_classes", "ids");
    requireArray(classes, count, "set_score_classes", "classes");
    bm->core.setScoreClasses(ids, classes, count);
    return CS_OK;
  });
}

int32_t cs_bm_set_class_scores(cs_block_manager* bm, const int32_t* classes, const float* scores,
                               int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(classes, count, "set_class_scores", "classes");
    requireArray(scores, count, "set_class_scores", "scores");
    bm->core.setClassScores(classes, scores, count);
    return CS_OK;
  });
}

int32_t cs_bm_evict(cs_block_manager* bm, int32_t tier, int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    const Tier t = toTier(tier, "evict");
    return bm->core.evict(t, count);
  });
}

int32_t cs_bm_demote(cs_block_manager* bm, const int32_t* ids, int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(ids, count, "demote", "ids");
    return bm->core.demote(ids, count);
  });
}

int32_t cs_bm_drop(cs_block_manager* bm, const int32_t* ids, int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(ids, count, "drop", "ids");
    return bm->core.drop(ids, count);
  });
}

int32_t cs_bm_load(cs_block_manager* bm, const int32_t* ids, int32_t count) {
  return withManager(bm, [&]() -> int32_t {
    requireArray(ids, count, "load", "ids");
    return bm->core.load(ids, count);
  });
}

int32_t cs_bm_used_blocks(const cs_block_manager* bm, int32_t tier) {
  return withManager(bm, [&]() -> int32_t {
    return bm->core.usedBlocks(toTier(tier, "used_blocks"));
  });
}

int32_t cs_bm_evictable_blocks(const cs_block_manager* bm, int32_t tier) {
  return withManager(bm, [&]() -> int32_t {
    return bm->core.evictableBlocks(toTier(tier, "evictable_blocks"));
  });
}

int32_t cs_bm_pinned_device_blocks(const cs_block_manager* bm) {
  return withManager(bm, [&]() -> int32_t { return bm->core.pinnedDeviceBlocks(); });
}

int32_t cs_bm_pending_copy_plan(const cs_block_manager* bm, int32_t* count, int32_t* num_stages) {
  return withManager(bm, [&]() -> int32_t {
    const cachesage::CopyPlan& p = bm->core.pendingCopyPlan();
    if (count != nullptr) *count = static_cast<int32_t>(p.size());
    if (num_stages != nullptr) *num_stages = static_cast<int32_t>(p.stageStarts.size());
    return CS_OK;
  });
}

int32_t cs_bm_pending_events(cs_block_manager* bm, int32_t* count) {
  return withManager(bm, [&]() -> int32_t {
    requireNonNull(count, "pending_events", "count");
    bm->gatherEvents();
    *count = static_cast<int32_t>(bm->pending.block.size());
    return CS_OK;
  });
}

int32_t cs_bm_set_record_events(cs_block_manager* bm, int32_t on) {
  return withManager(bm, [&]() -> int32_t {
    if (on != 0 && on != 1) {
      throw std::invalid_argument("set_record_events: on must be 0 or 1, got " + str(on));
    }
    bm->core.setRecordEvents(on == 1);
    if (on == 0) {
      bm->pending.clear();
      bm->incoming.clear();
    }
    return CS_OK;
  });
}

int32_t cs_bm_take_copy_plan(cs_block_manager* bm, cs_copy_plan* plan) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "take_copy_plan";
    requireNonNull(plan, op, "plan");
    requireCapacity(plan->capacity, op);
    if (plan->capacity > 0) {
      requireNonNull(plan->src_tier, op, "plan->src_tier");
      requireNonNull(plan->src_slot, op, "plan->src_slot");
      requireNonNull(plan->dst_tier, op, "plan->dst_tier");
      requireNonNull(plan->dst_slot, op, "plan->dst_slot");
    }
    if (plan->stage_starts != nullptr) requireCapacity(plan->stage_capacity, op);
    const cachesage::CopyPlan& pending = bm->core.pendingCopyPlan();
    const int32_t count = static_cast<int32_t>(pending.size());
    const int32_t stages = static_cast<int32_t>(pending.stageStarts.size());
    plan->count = count;
    plan->num_stages = stages;
    if (count > plan->capacity ||
        (plan->stage_starts != nullptr && stages > plan->stage_capacity)) {
      throw BufferTooSmall(std::string(op) + ": " + str(count) + " copies in " + str(stages) +
                           " stages pending but the plan holds " + str(plan->capacity) +
                           " copies and " +
                           str(plan->stage_starts != nullptr ? plan->stage_capacity : 0) +
                           " stages (kept for the next call)");
    }
    bm->core.takeCopyPlan(bm->plan);
    const cachesage::CopyPlan& p = bm->plan;
    const size_t n = p.size();
    if (n > 0) {
      std::memcpy(plan->src_tier, p.srcTier.data(), n);
      std::memcpy(plan->src_slot, p.srcSlot.data(), n * sizeof(int32_t));
      std::memcpy(plan->dst_tier, p.dstTier.data(), n);
      std::memcpy(plan->dst_slot, p.dstSlot.data(), n * sizeof(int32_t));
      if (plan->stage_starts != nullptr) {
        std::memcpy(plan->stage_starts, p.stageStarts.data(),
                    p.stageStarts.size() * sizeof(int32_t));
      }
    }
    return CS_OK;
  });
}

int32_t cs_bm_take_events(cs_block_manager* bm, cs_events* events) {
  return withManager(bm, [&]() -> int32_t {
    const char* op = "take_events";
    requireNonNull(events, op, "events");
    requireCapacity(events->capacity, op);
    if (events->capacity > 0) {
      requireNonNull(events->kind, op, "events->kind");
      requireNonNull(events->block, op, "events->block");
      requireNonNull(events->hash, op, "events->hash");
      requireNonNull(events->tier, op, "events->tier");
    }
    bm->gatherEvents();
    const cachesage::Events& e = bm->pending;
    const size_t n = e.block.size();
    events->count = static_cast<int32_t>(n);
    if (n > static_cast<size_t>(events->capacity)) {
      throw BufferTooSmall(std::string(op) + ": " + str(static_cast<int64_t>(n)) +
                           " events pending but the buffers hold " + str(events->capacity) +
                           " (kept for the next call)");
    }
    if (n > 0) {
      std::memcpy(events->kind, e.kind.data(), n);
      std::memcpy(events->block, e.block.data(), n * sizeof(int32_t));
      std::memcpy(events->hash, e.hash.data(), n * sizeof(uint64_t));
      std::memcpy(events->tier, e.tier.data(), n);
    }
    bm->pending.clear();
    return CS_OK;
  });
}

int32_t cs_bm_check_invariants(const cs_block_manager* bm, char* msg, size_t msg_size) {
  copyMessage(msg, msg_size, "");
  if (bm == nullptr) {
    copyMessage(msg, msg_size, cs_bm_last_error(nullptr));
    return CS_ERR_INVALID_ARGUMENT;
  }
  const int32_t status = withManager(bm, [&]() -> int32_t {
    const std::string broken = bm->core.checkInvariants();
    if (broken.empty()) return CS_OK;
    copyMessage(bm->error, sizeof bm->error, broken.c_str());
    return CS_ERR_INVARIANT;
  });
  if (status != CS_OK) copyMessage(msg, msg_size, bm->error);
  return status;
}

}  // extern "C"
