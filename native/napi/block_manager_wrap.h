#pragma once

#include <napi.h>

#include <initializer_list>
#include <memory>
#include <vector>

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
  Napi::Value SetRecordEvents(const Napi::CallbackInfo& info);
  Napi::Value CheckInvariants(const Napi::CallbackInfo& info);
  Napi::Value Clock(const Napi::CallbackInfo& info);
  Napi::Value Metadata(const Napi::CallbackInfo& info);
  Napi::Value BindScratch(const Napi::CallbackInfo& info);
  Napi::Value TakeOverflow(const Napi::CallbackInfo& info);

  // Results leave through scratch arrays the caller allocated once and
  // bound (bindScratch), not through typed arrays created per call: a call
  // returns a number and the caller copies what it keeps. Creating an
  // ArrayBuffer and its views from native code costs microseconds, more
  // than most of the operations themselves.
  struct Span {
    const int32_t* data;
    size_t size;
  };
  // Writes the spans one after another into the int scratch and returns
  // their total length; when they do not fit, keeps them for takeOverflow()
  // and returns -(total) - 1.
  double emitInts(std::initializer_list<Span> spans);
  // Throws unless a scratch is bound and still attached (`events`: the
  // events scratch, else the int scratch).
  void requireScratch(const Napi::Env& env, const char* op, bool events = false) const;

  std::unique_ptr<BlockManager> manager_;
  int64_t externalBytes_ = 0;
  // Results of admit and append, reused so a call allocates nothing.
  AdmitResult admitScratch_;
  std::vector<int32_t> appendScratch_;
  Napi::Reference<Napi::Int32Array> intsRef_;
  int32_t* ints_ = nullptr;
  size_t intsLength_ = 0;
  // Events scratch: hashes, then block ids, kinds and tiers, each
  // `eventsCapacity_` long.
  Napi::Reference<Napi::Uint8Array> eventsRef_;
  uint8_t* events_ = nullptr;
  size_t eventsCapacity_ = 0;
  std::vector<int32_t> overflow_;
  // takeCopyPlan's drained plan and its tiers widened to ints, kept so that
  // their capacity is reused from one drain to the next.
  CopyPlan copyPlan_;
  std::vector<int32_t> tierScratch_;
};

}  // namespace cachesage::napi
