#include "block_manager_wrap.h"

#include "napi_util.h"

namespace cachesage::napi {

namespace {

// Native bytes per block id (metadata arrays, hash index, eviction queues,
// tree links) and per score class (two queues' heaps and positions).
constexpr int64_t kBytesPerBlockId = 160;
constexpr int64_t kBytesPerClass = 60;

Tier tierArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return static_cast<Tier>(int32Arg(info, i, op, 1, 2));
}

// Zero-copy view of a metadata vector. The ArrayBuffer's finalizer holds a
// shared_ptr to the metadata, so a view kept by JS outlives the manager
// safely.
template <typename TA, typename T>
TA view(Napi::Env env, const std::shared_ptr<BlockMetadata>& meta, std::vector<T>& values) {
  // An external buffer over no memory reads as detached: hand out a plain empty array.
  if (values.empty()) return TA::New(env, 0);
  auto* keepAlive = new std::shared_ptr<BlockMetadata>(meta);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, values.data(), values.size() * sizeof(T),
      [](Napi::Env, void*, std::shared_ptr<BlockMetadata>* hint) { delete hint; }, keepAlive);
  return TA::New(env, values.size(), buffer, 0);
}

// Whether [p, p + bytes) shares memory with one of the metadata arrays
// handed out as views: results written there would corrupt the manager.
bool overlapsMetadata(const BlockMetadata& m, const void* p, size_t bytes) {
  const char* x = static_cast<const char*>(p);
  auto hit = [&](const auto& v) {
    const char* a = reinterpret_cast<const char*>(v.data());
    return !v.empty() && x < a + v.size() * sizeof(v[0]) && a < x + bytes;
  };
  return hit(m.tier) || hit(m.committed) || hit(m.slot) || hit(m.refCount) || hit(m.lastAccess) ||
         hit(m.accessCount) || hit(m.workload) || hit(m.agentMask) || hit(m.session) || hit(m.depth) ||
         hit(m.cachedChildren) || hit(m.deviceChildren) || hit(m.hash) || hit(m.parent) || hit(m.score) ||
         hit(m.scoreClass) || hit(m.classScore);
}

}  // namespace

Napi::Function BlockManagerWrap::Define(Napi::Env env) {
  return DefineClass(
      env, "NativeBlockManager",
      {
          InstanceMethod<&BlockManagerWrap::Lookup>("lookup"),
          InstanceMethod<&BlockManagerWrap::Admit>("admit"),
          InstanceMethod<&BlockManagerWrap::Append>("append"),
          InstanceMethod<&BlockManagerWrap::Commit>("commit"),
          InstanceMethod<&BlockManagerWrap::Release>("release"),
          InstanceMethod<&BlockManagerWrap::HasRequest>("hasRequest"),
          InstanceMethod<&BlockManagerWrap::RequestBlocks>("requestBlocks"),
          InstanceMethod<&BlockManagerWrap::NumRequests>("numRequests"),
          InstanceMethod<&BlockManagerWrap::SetScores>("setScores"),
          InstanceMethod<&BlockManagerWrap::SetAllScores>("setAllScores"),
          InstanceMethod<&BlockManagerWrap::SetScoreClasses>("setScoreClasses"),
          InstanceMethod<&BlockManagerWrap::SetClassScores>("setClassScores"),
          InstanceMethod<&BlockManagerWrap::Evict>("evict"),
          InstanceMethod<&BlockManagerWrap::Demote>("demote"),
          InstanceMethod<&BlockManagerWrap::Drop>("drop"),
          InstanceMethod<&BlockManagerWrap::Load>("load"),
          InstanceMethod<&BlockManagerWrap::UsedBlocks>("usedBlocks"),
          InstanceMethod<&BlockManagerWrap::EvictableBlocks>("evictableBlocks"),
          InstanceMethod<&BlockManagerWrap::PinnedDeviceBlocks>("pinnedDeviceBlocks"),
          InstanceMethod<&BlockManagerWrap::TakeCopyPlan>("takeCopyPlan"),
          InstanceMethod<&BlockManagerWrap::TakeEvents>("takeEvents"),
          InstanceMethod<&BlockManagerWrap::SetRecordEvents>("setRecordEvents"),
          InstanceMethod<&BlockManagerWrap::CheckInvariants>("checkInvariants"),
          InstanceMethod<&BlockManagerWrap::Clock>("clock"),
          InstanceMethod<&BlockManagerWrap::Metadata>("metadata"),
          InstanceMethod<&BlockManagerWrap::BindScratch>("bindScratch"),
          InstanceMethod<&BlockManagerWrap::TakeOverflow>("takeOverflow"),
      });
}

// new NativeBlockManager(blockSize, bytesPerBlock, deviceBlocks, hostBlocks, maxClasses)
BlockManagerWrap::BlockManagerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<BlockManagerWrap>(info) {
  const char* op = "NativeBlockManager";
  BlockManagerConfig config;
  config.blockSize = int32Arg(info, 0, op, 1);
  config.bytesPerBlock = static_cast<int64_t>(numberArg(info, 1, op, 0, kMaxSafeInteger));
  config.deviceBlocks = int32Arg(info, 2, op, 1);
  config.hostBlocks = int32Arg(info, 3, op, 0);
  config.maxClasses = int32Arg(info, 4, op, 0);
  manager_ = guarded(info.Env(), [&] { return std::make_unique<BlockManager>(config); });
  // Tell V8 what this small object holds natively, so the garbage collector
  // reclaims managers that go out of use before memory runs short.
  externalBytes_ = static_cast<int64_t>(manager_->numBlockIds()) * kBytesPerBlockId +
                   static_cast<int64_t>(config.maxClasses) * kBytesPerClass;
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
}

BlockManagerWrap::~BlockManagerWrap() {
  Napi::MemoryManagement::AdjustExternalMemory(Env(), -externalBytes_);
}

// lookup(hashes) -> total; scratch: [deviceBlocks, hostBlocks, ...blockIds]
Napi::Value BlockManagerWrap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "lookup");
  auto hashes = hashesArg(info, 0, "lookup");
  LookupResult r = guarded(env, [&] {
    return manager_->lookup(hashes.Data(), lengthOf(hashes, env, "lookup"));
  });
  const int32_t header[2] = {r.deviceBlocks, r.hostBlocks};
  return Napi::Number::New(env, emitInts({{header, 2}, {r.ids.data(), r.ids.size()}}));
}

// admit(requestId, hashes, numTokens, workload, agent, session) -> total or
// null; scratch: [cachedDeviceTokens, loadedBlocks, ...blockIds, ...blockTable]
Napi::Value BlockManagerWrap::Admit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "admit";
  requireScratch(env, op);
  int64_t requestId = requestIdArg(info, 0, op);
  auto hashes = hashesArg(info, 1, op);
  int32_t numTokens = int32Arg(info, 2, op, 1);
  RequestTags tags;
  tags.workload = int32Arg(info, 3, op, -1);
  tags.agent = int32Arg(info, 4, op, -1, kMaxAgentBit);
  tags.session = int32Arg(info, 5, op, -1);
  AdmitResult& r = admitScratch_;
  bool admitted = guarded(env, [&] {
    return manager_->admit(requestId, hashes.Data(), lengthOf(hashes, env, op), numTokens, tags, r);
  });
  if (!admitted) return env.Null();
  const int32_t header[2] = {r.cachedDeviceTokens, r.loadedBlocks};
  return Napi::Number::New(env, emitInts({{header, 2},
                                               {r.blockIds.data(), r.blockIds.size()},
                                               {r.blockTable.data(), r.blockTable.size()}}));
}

// append(requestId, numTokens, hashes) -> total or null; scratch: the new block ids
Napi::Value BlockManagerWrap::Append(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "append";
  requireScratch(env, op);
  int64_t requestId = requestIdArg(info, 0, op);
  int32_t numTokens = int32Arg(info, 1, op, 0);
  auto hashes = hashesArg(info, 2, op);
  std::vector<int32_t>& ids = appendScratch_;
  bool ok = guarded(env, [&] {
    return manager_->append(requestId, numTokens, hashes.Data(), lengthOf(hashes, env, op), ids);
  });
  if (!ok) return env.Null();
  return Napi::Number::New(env, emitInts({{ids.data(), ids.size()}}));
}

// commit(requestId, numBlocks) -> total; scratch: the request's block ids
Napi::Value BlockManagerWrap::Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "commit");
  int64_t requestId = requestIdArg(info, 0, "commit");
  int32_t numBlocks = int32Arg(info, 1, "commit", 0);
  const auto& blocks = guarded(env, [&]() -> const std::vector<int32_t>& { return manager_->commit(requestId, numBlocks); });
  return Napi::Number::New(env, emitInts({{blocks.data(), blocks.size()}}));
}

Napi::Value BlockManagerWrap::Release(const Napi::CallbackInfo& info) {
  int64_t requestId = requestIdArg(info, 0, "release");
  guarded(info.Env(), [&] { manager_->release(requestId); });
  return info.Env().Undefined();
}

Napi::Value BlockManagerWrap::HasRequest(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(),
                            manager_->hasRequest(requestIdArg(info, 0, "hasRequest")));
}

// requestBlocks(requestId) -> total; scratch: the request's block ids
Napi::Value BlockManagerWrap::RequestBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "requestBlocks");
  int64_t requestId = requestIdArg(info, 0, "requestBlocks");
  const auto& blocks = guarded(env, [&]() -> const std::vector<int32_t>& {
    return manager_->requestBlocks(requestId);
  });
  return Napi::Number::New(env, emitInts({{blocks.data(), blocks.size()}}));
}

Napi::Value BlockManagerWrap::NumRequests(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), manager_->numRequests());
}

Napi::Value BlockManagerWrap::SetScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = idsArg(info, 0, "setScores");
  auto scores = scoresArg(info, 1, "setScores");
  if (ids.ElementLength() != scores.ElementLength()) {
    throw Napi::RangeError::New(env, "setScores: ids and scores differ in length");
  }
  guarded(env, [&] {
    manager_->setScores(ids.Data(), scores.Data(), lengthOf(ids, env, "setScores"));
  });
  return env.Undefined();
}

Napi::Value BlockManagerWrap::SetAllScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto scores = scoresArg(info, 0, "setAllScores");
  guarded(env, [&] {
    manager_->setAllScores(scores.Data(), lengthOf(scores, env, "setAllScores"));
  });
  return env.Undefined();
}

Napi::Value BlockManagerWrap::SetScoreClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = idsArg(info, 0, "setScoreClasses");
  auto classes = idsArg(info, 1, "setScoreClasses");
  if (ids.ElementLength() != classes.ElementLength()) {
    throw Napi::RangeError::New(env, "setScoreClasses: ids and classes differ in length");
  }
  guarded(env, [&] {
    manager_->setScoreClasses(ids.Data(), classes.Data(), lengthOf(ids, env, "setScoreClasses"));
  });
  return env.Undefined();
}

Napi::Value BlockManagerWrap::SetClassScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto classes = idsArg(info, 0, "setClassScores");
  auto scores = scoresArg(info, 1, "setClassScores");
  if (classes.ElementLength() != scores.ElementLength()) {
    throw Napi::RangeError::New(env, "setClassScores: classes and scores differ in length");
  }
  guarded(env, [&] {
    manager_->setClassScores(classes.Data(), scores.Data(),
                             lengthOf(classes, env, "setClassScores"));
  });
  return env.Undefined();
}

Napi::Value BlockManagerWrap::Evict(const Napi::CallbackInfo& info) {
  Tier tier = tierArg(info, 0, "evict");
  int32_t count = int32Arg(info, 1, "evict", 0);
  return Napi::Number::New(info.Env(),
                           guarded(info.Env(), [&] { return manager_->evict(tier, count); }));
}

Napi::Value BlockManagerWrap::Demote(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = idsArg(info, 0, "demote");
  return Napi::Number::New(env, guarded(env, [&] {
    return manager_->demote(ids.Data(), lengthOf(ids, env, "demote"));
  }));
}

Napi::Value BlockManagerWrap::Drop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = idsArg(info, 0, "drop");
  return Napi::Number::New(env, guarded(env, [&] {
    return manager_->drop(ids.Data(), lengthOf(ids, env, "drop"));
  }));
}

Napi::Value BlockManagerWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = idsArg(info, 0, "load");
  return Napi::Number::New(env, guarded(env, [&] {
    return manager_->load(ids.Data(), lengthOf(ids, env, "load"));
  }));
}

Napi::Value BlockManagerWrap::UsedBlocks(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), manager_->usedBlocks(tierArg(info, 0, "usedBlocks")));
}

Napi::Value BlockManagerWrap::EvictableBlocks(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           manager_->evictableBlocks(tierArg(info, 0, "evictableBlocks")));
}

Napi::Value BlockManagerWrap::PinnedDeviceBlocks(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), manager_->pinnedDeviceBlocks());
}

// takeCopyPlan() -> length: the pending copies written into the int scratch
// as [n, stages, srcSlot x n, dstSlot x n, stageStarts x stages,
// srcTier x n, dstTier x n] and drained; 0 when none is pending (most
// scheduler steps move no bytes). A plan that does not fit is drained all
// the same and waits for takeOverflow(), as every result does.
Napi::Value BlockManagerWrap::TakeCopyPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "takeCopyPlan");
  if (manager_->pendingCopyPlan().size() == 0) return Napi::Number::New(env, 0);
  manager_->takeCopyPlan(copyPlan_);
  const CopyPlan& plan = copyPlan_;
  const size_t n = plan.srcSlot.size();
  const int32_t header[2] = {static_cast<int32_t>(n), static_cast<int32_t>(plan.stageStarts.size())};
  // Tiers travel widened to ints: one scratch, one copy out on the JS side.
  tierScratch_.resize(2 * n);
  for (size_t i = 0; i < n; ++i) {
    tierScratch_[i] = plan.srcTier[i];
    tierScratch_[n + i] = plan.dstTier[i];
  }
  return Napi::Number::New(env, emitInts({{header, 2},
                                          {plan.srcSlot.data(), n},
                                          {plan.dstSlot.data(), n},
                                          {plan.stageStarts.data(), plan.stageStarts.size()},
                                          {tierScratch_.data(), 2 * n}}));
}

// takeEvents() -> count: copied into the events scratch and drained; 0 when
// none is pending; -(count) when they do not fit, leaving them queued.
Napi::Value BlockManagerWrap::TakeEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "takeEvents", true);
  const Events& events = manager_->queuedEvents();
  const size_t n = events.kind.size();
  if (n > eventsCapacity_) return Napi::Number::New(env, -static_cast<double>(n));
  if (n > 0) {
    const size_t c = eventsCapacity_;
    std::memcpy(events_, events.hash.data(), n * 8);
    std::memcpy(events_ + c * 8, events.block.data(), n * 4);
    std::memcpy(events_ + c * 12, events.kind.data(), n);
    std::memcpy(events_ + c * 13, events.tier.data(), n);
    manager_->clearEvents();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// setRecordEvents(on: boolean): whether block events are queued from now on
// (off drops the queued ones).
Napi::Value BlockManagerWrap::SetRecordEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value on = arg(info, 0);
  if (!on.IsBoolean()) throw Napi::TypeError::New(env, argName("setRecordEvents", 0) + " must be a boolean");
  manager_->setRecordEvents(on.As<Napi::Boolean>().Value());
  return env.Undefined();
}

// bindScratch(ints: Int32Array, events: Uint8Array): the arrays results are
// written into from now on. Both must be views of ArrayBuffers created in
// JS (off the V8 heap, so they never move); they are kept alive here.
Napi::Value BlockManagerWrap::BindScratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "bindScratch";
  auto ints = idsArg(info, 0, op);
  auto events = bytesArg(info, 1, op);
  if (ints.ElementLength() < 2) throw Napi::RangeError::New(env, "bindScratch: ints must hold at least 2 values");
  if (events.ElementLength() % 14 != 0 || events.ByteOffset() % 8 != 0) {
    throw Napi::RangeError::New(env, "bindScratch: events must be 14 bytes per event, 8-byte aligned");
  }
  const BlockMetadata& m = *manager_->metadata();
  if (overlapsMetadata(m, ints.Data(), ints.ByteLength()) || overlapsMetadata(m, events.Data(), events.ByteLength())) {
    throw Napi::RangeError::New(env, "bindScratch: a scratch array shares memory with the manager's metadata");
  }
  intsRef_ = Napi::Persistent(ints);
  ints_ = ints.Data();
  intsLength_ = ints.ElementLength();
  eventsRef_ = Napi::Persistent(events);
  events_ = events.Data();
  eventsCapacity_ = events.ElementLength() / 14;
  return env.Undefined();
}

// takeOverflow() -> total: the last result that did not fit, written into the
// (larger) scratch bound since.
Napi::Value BlockManagerWrap::TakeOverflow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireScratch(env, "takeOverflow");
  if (overflow_.size() > intsLength_) {
    throw Napi::RangeError::New(env, "takeOverflow: the bound scratch is still too small");
  }
  if (!overflow_.empty()) std::memcpy(ints_, overflow_.data(), overflow_.size() * 4);
  const double total = static_cast<double>(overflow_.size());
  overflow_.clear();
  return Napi::Number::New(env, total);
}

double BlockManagerWrap::emitInts(std::initializer_list<Span> spans) {
  size_t total = 0;
  for (const Span& s : spans) total += s.size;
  int32_t* out = ints_;
  if (total > intsLength_) {
    overflow_.clear();
    overflow_.reserve(total);
    for (const Span& s : spans) overflow_.insert(overflow_.end(), s.data, s.data + s.size);
    return -static_cast<double>(total) - 1;
  }
  for (const Span& s : spans) {
    if (s.size > 0) std::memcpy(out, s.data, s.size * 4);
    out += s.size;
  }
  return static_cast<double>(total);
}

void BlockManagerWrap::requireScratch(const Napi::Env& env, const char* op, bool events) const {
  if (ints_ == nullptr) throw Napi::Error::New(env, std::string(op) + ": no scratch bound (bindScratch)");
  // A scratch whose buffer was transferred away reads as empty: never write
  // through the pointer kept at binding then.
  bool moved = false;
  if (events) {
    Napi::Uint8Array a = eventsRef_.Value();
    moved = a.ElementLength() != eventsCapacity_ * 14 || a.Data() != events_;
  } else {
    Napi::Int32Array a = intsRef_.Value();
    moved = a.ElementLength() != intsLength_ || a.Data() != ints_;
  }
  if (moved) throw Napi::Error::New(env, std::string(op) + ": the bound scratch was detached (bindScratch again)");
}

Napi::Value BlockManagerWrap::CheckInvariants(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), manager_->checkInvariants());
}

Napi::Value BlockManagerWrap::Clock(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), manager_->clock());
}

Napi::Value BlockManagerWrap::Metadata(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<BlockMetadata>& meta = manager_->metadata();
  BlockMetadata& m = *meta;
  Napi::Object out = Napi::Object::New(env);
  out.Set("tier", view<Napi::Uint8Array>(env, meta, m.tier));
  out.Set("committed", view<Napi::Uint8Array>(env, meta, m.committed));
  out.Set("slot", view<Napi::Int32Array>(env, meta, m.slot));
  out.Set("refCount", view<Napi::Int32Array>(env, meta, m.refCount));
  out.Set("lastAccess", view<Napi::Float64Array>(env, meta, m.lastAccess));
  out.Set("accessCount", view<Napi::Uint32Array>(env, meta, m.accessCount));
  out.Set("workload", view<Napi::Int32Array>(env, meta, m.workload));
  out.Set("agentMask", view<Napi::BigUint64Array>(env, meta, m.agentMask));
  out.Set("session", view<Napi::Int32Array>(env, meta, m.session));
  out.Set("depth", view<Napi::Int32Array>(env, meta, m.depth));
  out.Set("cachedChildren", view<Napi::Int32Array>(env, meta, m.cachedChildren));
  out.Set("deviceChildren", view<Napi::Int32Array>(env, meta, m.deviceChildren));
  out.Set("hash", view<Napi::BigUint64Array>(env, meta, m.hash));
  out.Set("parent", view<Napi::Int32Array>(env, meta, m.parent));
  out.Set("score", view<Napi::Float32Array>(env, meta, m.score));
  out.Set("scoreClass", view<Napi::Int32Array>(env, meta, m.scoreClass));
  out.Set("classScore", view<Napi::Float32Array>(env, meta, m.classScore));
  return out;
}

}  // namespace cachesage::napi
