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
          InstanceMethod<&BlockManagerWrap::CheckInvariants>("checkInvariants"),
          InstanceMethod<&BlockManagerWrap::Clock>("clock"),
          InstanceMethod<&BlockManagerWrap::Metadata>("metadata"),
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

Napi::Value BlockManagerWrap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto hashes = hashesArg(info, 0, "lookup");
  LookupResult r = guarded(env, [&] {
    return manager_->lookup(hashes.Data(), lengthOf(hashes, env, "lookup"));
  });
  // [deviceBlocks, hostBlocks, blockIds]: indexed, cheaper than named properties.
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Number::New(env, r.deviceBlocks));
  out.Set(1u, Napi::Number::New(env, r.hostBlocks));
  out.Set(2u, copyOut<Napi::Int32Array>(env, r.ids));
  return out;
}

// admit(requestId, hashes, numTokens, workload, agent, session)
Napi::Value BlockManagerWrap::Admit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "admit";
  int64_t requestId = requestIdArg(info, 0, op);
  auto hashes = hashesArg(info, 1, op);
  int32_t numTokens = int32Arg(info, 2, op, 1);
  RequestTags tags;
  tags.workload = int32Arg(info, 3, op, -1);
  tags.agent = int32Arg(info, 4, op, -1, kMaxAgentBit);
  tags.session = int32Arg(info, 5, op, -1);
  AdmitResult r;
  bool admitted = guarded(env, [&] {
    return manager_->admit(requestId, hashes.Data(), lengthOf(hashes, env, op), numTokens, tags, r);
  });
  if (!admitted) return env.Null();
  // [cachedDeviceTokens, loadedBlocks, blockIds, blockTable], the two arrays
  // views of one buffer: one allocation per admit instead of two.
  const size_t n = r.blockIds.size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * 8);
  auto* base = static_cast<uint8_t*>(buffer.Data());
  std::memcpy(base, r.blockIds.data(), n * 4);
  std::memcpy(base + n * 4, r.blockTable.data(), n * 4);
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Number::New(env, r.cachedDeviceTokens));
  out.Set(1u, Napi::Number::New(env, r.loadedBlocks));
  out.Set(2u, Napi::Int32Array::New(env, n, buffer, 0));
  out.Set(3u, Napi::Int32Array::New(env, n, buffer, n * 4));
  return out;
}

// append(requestId, numTokens, hashes)
Napi::Value BlockManagerWrap::Append(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "append";
  int64_t requestId = requestIdArg(info, 0, op);
  int32_t numTokens = int32Arg(info, 1, op, 0);
  auto hashes = hashesArg(info, 2, op);
  std::vector<int32_t> ids;
  bool ok = guarded(env, [&] {
    return manager_->append(requestId, numTokens, hashes.Data(), lengthOf(hashes, env, op), ids);
  });
  if (!ok) return env.Null();
  return copyOut<Napi::Int32Array>(env, ids);
}

Napi::Value BlockManagerWrap::Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t requestId = requestIdArg(info, 0, "commit");
  int32_t numBlocks = int32Arg(info, 1, "commit", 0);
  auto blocks = guarded(env, [&] { return manager_->commit(requestId, numBlocks); });
  return copyOut<Napi::Int32Array>(env, blocks);
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

Napi::Value BlockManagerWrap::RequestBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t requestId = requestIdArg(info, 0, "requestBlocks");
  const auto& blocks = guarded(env, [&]() -> const std::vector<int32_t>& {
    return manager_->requestBlocks(requestId);
  });
  return copyOut<Napi::Int32Array>(env, blocks);
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

Napi::Value BlockManagerWrap::TakeCopyPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Most scheduler steps move no bytes: answer them without allocating.
  if (manager_->pendingCopyPlan().size() == 0) return env.Undefined();
  CopyPlan plan;
  manager_->takeCopyPlan(plan);
  // One buffer for the five arrays, widest elements first so every view is
  // aligned: one allocation per drain instead of five. Handed out as
  // [srcTier, srcSlot, dstTier, dstSlot, stageStarts].
  const size_t n = plan.srcSlot.size();
  const size_t stages = plan.stageStarts.size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * 10 + stages * 4);
  auto* base = static_cast<uint8_t*>(buffer.Data());
  std::memcpy(base, plan.srcSlot.data(), n * 4);
  std::memcpy(base + n * 4, plan.dstSlot.data(), n * 4);
  if (stages > 0) std::memcpy(base + n * 8, plan.stageStarts.data(), stages * 4);
  std::memcpy(base + n * 8 + stages * 4, plan.srcTier.data(), n);
  std::memcpy(base + n * 9 + stages * 4, plan.dstTier.data(), n);
  Napi::Array out = Napi::Array::New(env, 5);
  out.Set(0u, Napi::Uint8Array::New(env, n, buffer, n * 8 + stages * 4));
  out.Set(1u, Napi::Int32Array::New(env, n, buffer, 0));
  out.Set(2u, Napi::Uint8Array::New(env, n, buffer, n * 9 + stages * 4));
  out.Set(3u, Napi::Int32Array::New(env, n, buffer, n * 4));
  out.Set(4u, Napi::Int32Array::New(env, stages, buffer, n * 8));
  return out;
}

Napi::Value BlockManagerWrap::TakeEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (manager_->pendingEvents() == 0) return env.Undefined();
  Events events;
  manager_->takeEvents(events);
  // One buffer for the four arrays, widest elements first so every view is
  // aligned: one allocation per drain instead of four. Handed out as
  // [kind, block, hash, tier].
  const size_t n = events.kind.size();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, n * 14);
  auto* base = static_cast<uint8_t*>(buffer.Data());
  std::memcpy(base, events.hash.data(), n * 8);
  std::memcpy(base + n * 8, events.block.data(), n * 4);
  std::memcpy(base + n * 12, events.kind.data(), n);
  std::memcpy(base + n * 13, events.tier.data(), n);
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Uint8Array::New(env, n, buffer, n * 12));
  out.Set(1u, Napi::Int32Array::New(env, n, buffer, n * 8));
  out.Set(2u, Napi::BigUint64Array::New(env, n, buffer, 0));
  out.Set(3u, Napi::Uint8Array::New(env, n, buffer, n * 13));
  return out;
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
