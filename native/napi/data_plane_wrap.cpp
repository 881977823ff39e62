#include "data_plane_wrap.h"

#include <vector>

#include "napi_util.h"

namespace cachesage::napi {

namespace {

struct OwnedPlan {
  std::vector<uint8_t> srcTier, dstTier;
  std::vector<int32_t> srcSlot, dstSlot;
  CopyPlanView view() const {
    return {srcTier.data(), srcSlot.data(), dstTier.data(), dstSlot.data(),
            static_cast<int32_t>(srcSlot.size())};
  }
};

// execute*(srcTier, srcSlot, dstTier, dstSlot)
OwnedPlan planArgs(const Napi::CallbackInfo& info, const char* op) {
  auto srcTier = bytesArg(info, 0, op);
  auto srcSlot = idsArg(info, 1, op);
  auto dstTier = bytesArg(info, 2, op);
  auto dstSlot = idsArg(info, 3, op);
  size_t n = srcSlot.ElementLength();
  if (srcTier.ElementLength() != n || dstTier.ElementLength() != n ||
      dstSlot.ElementLength() != n) {
    throw Napi::RangeError::New(info.Env(),
                                std::string(op) + ": copy plan arrays differ in length");
  }
  lengthOf(srcSlot, info.Env(), op);
  OwnedPlan plan;
  plan.srcTier.assign(srcTier.Data(), srcTier.Data() + n);
  plan.srcSlot.assign(srcSlot.Data(), srcSlot.Data() + n);
  plan.dstTier.assign(dstTier.Data(), dstTier.Data() + n);
  plan.dstSlot.assign(dstSlot.Data(), dstSlot.Data() + n);
  return plan;
}

class CopyWorker : public Napi::AsyncWorker {
 public:
  CopyWorker(Napi::Env env, std::shared_ptr<CpuDataPlane> plane, OwnedPlan plan)
      : Napi::AsyncWorker(env), plane_(std::move(plane)), plan_(std::move(plan)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      plane_->execute(plan_.view());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  std::shared_ptr<CpuDataPlane> plane_;  // keeps the pools alive while copying
  OwnedPlan plan_;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

Napi::Function DataPlaneWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeCpuDataPlane",
                     {
                         InstanceMethod<&DataPlaneWrap::Execute>("execute"),
                         InstanceMethod<&DataPlaneWrap::ExecuteAsync>("executeAsync"),
                         InstanceMethod<&DataPlaneWrap::Write>("write"),
                         InstanceMethod<&DataPlaneWrap::Read>("read"),
                         InstanceMethod<&DataPlaneWrap::DevicePool>("devicePool"),
                     });
}

// new NativeCpuDataPlane(bytesPerBlock, deviceBlocks, hostBlocks)
DataPlaneWrap::DataPlaneWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<DataPlaneWrap>(info) {
  const char* op = "NativeCpuDataPlane";
  double bytesPerBlock = numberArg(info, 0, op, 1, kMaxSafeInteger);
  int32_t deviceBlocks = int32Arg(info, 1, op, 1);
  int32_t hostBlocks = int32Arg(info, 2, op, 0);
  plane_ = guarded(info.Env(), [&] {
    return std::make_shared<CpuDataPlane>(static_cast<int64_t>(bytesPerBlock), deviceBlocks,
                                          hostBlocks);
  });
}

Napi::Value DataPlaneWrap::Execute(const Napi::CallbackInfo& info) {
  OwnedPlan plan = planArgs(info, "execute");
  guarded(info.Env(), [&] { plane_->execute(plan.view()); });
  return info.Env().Undefined();
}

Napi::Value DataPlaneWrap::ExecuteAsync(const Napi::CallbackInfo& info) {
  OwnedPlan plan = planArgs(info, "executeAsync");
  // Refuse a bad plan now, as a synchronous throw, rather than half-copying later.
  guarded(info.Env(), [&] { plane_->validate(plan.view()); });
  auto* worker = new CopyWorker(info.Env(), plane_, std::move(plan));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

static int32_t slotArg(const Napi::CallbackInfo& info, const CpuDataPlane& plane, Tier* tier,
                       const char* op) {
  *tier = static_cast<Tier>(int32Arg(info, 0, op, 1, 2));
  int32_t limit = plane.blocks(*tier);
  if (limit == 0) throw Napi::RangeError::New(info.Env(), std::string(op) + ": the tier has no blocks");
  return int32Arg(info, 1, op, 0, limit - 1);
}

// write(tier, slot, bytes): bytes.length must equal bytesPerBlock.
Napi::Value DataPlaneWrap::Write(const Napi::CallbackInfo& info) {
  Tier tier;
  int32_t slot = slotArg(info, *plane_, &tier, "write");
  auto bytes = bytesArg(info, 2, "write");
  if (bytes.ElementLength() != static_cast<size_t>(plane_->bytesPerBlock())) {
    throw Napi::RangeError::New(info.Env(), "write: expected " +
                                                std::to_string(plane_->bytesPerBlock()) +
                                                " bytes, got " +
                                                std::to_string(bytes.ElementLength()));
  }
  std::memcpy(plane_->block(tier, slot), bytes.Data(), bytes.ElementLength());
  return info.Env().Undefined();
}

Napi::Value DataPlaneWrap::Read(const Napi::CallbackInfo& info) {
  Tier tier;
  int32_t slot = slotArg(info, *plane_, &tier, "read");
  size_t n = static_cast<size_t>(plane_->bytesPerBlock());
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), n);
  std::memcpy(out.Data(), plane_->block(tier, slot), n);
  return out;
}

// devicePool() -> ArrayBuffer over the device pool itself (no copy), for an
// engine that computes on the blocks in place; it keeps the pools alive.
// Every call returns the same buffer: V8 must not see one memory range
// backing two buffers.
Napi::Value DataPlaneWrap::DevicePool(const Napi::CallbackInfo& info) {
  if (devicePool_.IsEmpty()) {
    auto* owner = new std::shared_ptr<CpuDataPlane>(plane_);
    size_t bytes = static_cast<size_t>(plane_->bytesPerBlock()) * static_cast<size_t>(plane_->blocks(Tier::Device));
    devicePool_ = Napi::Persistent(Napi::ArrayBuffer::New(
        info.Env(), plane_->block(Tier::Device, 0), bytes,
        [](Napi::Env, void*, std::shared_ptr<CpuDataPlane>* held) { delete held; }, owner));
  }
  return devicePool_.Value();
}

}  // namespace cachesage::napi
