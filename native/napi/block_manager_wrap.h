#pragma once

#include <napi.h>

#include <memory>

#include "block_manager.h"

namespace cachesage::napi {

// JS class `NativeBlockManager`: one method per core operation, typed arrays
// in and out, one call per scheduler step.
class BlockManagerWrap : public Napi::ObjectWrap<BlockManagerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BlockManagerWrap(const Napi::CallbackInfo& info);
  ~BlockManagerWrap() override;

 private:
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Admit(const Napi::CallbackInfo& info);
  Napi::Value Append(const Napi::CallbackInfo& info);
  Napi::Value Commit(const Napi::CallbackInfo& info);
  Napi::Value Release(const Napi::CallbackInfo& info);
  Napi::Value HasRequest(const Napi::CallbackInfo& info);
  Napi::Value RequestBlocks(const Napi::CallbackInfo& info);
  Napi::Value NumRequests(const Napi::CallbackInfo& info);
  Napi::Value SetScores(const Napi::CallbackInfo& info);
  Napi::Value SetAllScores(const Napi::CallbackInfo& info);
  Napi::Value SetScoreClasses(const Napi::CallbackInfo& info);
  Napi::Value SetClassScores(const Napi::CallbackInfo& info);
  Napi::Value Evict(const Napi::CallbackInfo& info);
  Napi::Value Demote(const Napi::CallbackInfo& info);
  Napi::Value Drop(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value UsedBlocks(const Napi::CallbackInfo& info);
  Napi::Value EvictableBlocks(const Napi::CallbackInfo& info);
  Napi::Value PinnedDeviceBlocks(const Napi::CallbackInfo& info);
  Napi::Value TakeCopyPlan(const Napi::CallbackInfo& info);
  Napi::Value TakeEvents(const Napi::CallbackInfo& info);
  Napi::Value CheckInvariants(const Napi::CallbackInfo& info);
  Napi::Value Clock(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);

  std::unique_ptr<BlockManager> manager_;
  int64_t externalBytes_ = 0;
};

}  // namespace cachesage::napi
