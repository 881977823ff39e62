#include "cuda_data_plane_wrap.h"

#include <cstring>
#include <memory>
#include <string>

#include "cuda_wrap.h"
#include "napi_util.h"

namespace cachesage::napi {

namespace {

// Marks the JS objects that wrap a CudaDataPlane (napi_type_tag_object).
const napi_type_tag kCudaDataPlaneTag = {0x8c3f1d2a6b7e4f90ULL, 0x1e5a9c7d3b2f6a48ULL};

}  // namespace

Napi::Function CudaDataPlaneWrap::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {
                         InstanceMethod<&CudaDataPlaneWrap::Execute>("execute"),
                         InstanceMethod<&CudaDataPlaneWrap::Prefetch>("prefetch"),
                         InstanceMethod<&CudaDataPlaneWrap::WaitForPrefetch>("waitForPrefetch"),
                         InstanceMethod<&CudaDataPlaneWrap::PrefetchComplete>("prefetchComplete"),
                         InstanceMethod<&CudaDataPlaneWrap::Synchronize>("synchronize"),
                         InstanceMethod<&CudaDataPlaneWrap::Write>("write"),
                         InstanceMethod<&CudaDataPlaneWrap::Read>("read"),
                         InstanceMethod<&CudaDataPlaneWrap::Destroy>("destroy"),
                     });
}

// new NativeCudaDataPlane(bytesPerBlock, deviceBlocks, hostBlocks)
CudaDataPlaneWrap::CudaDataPlaneWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CudaDataPlaneWrap>(info) {
  const double bytesPerBlock = numberArg(info, 0, kName, 1, kMaxSafeInteger);
  const int32_t deviceBlocks = int32Arg(info, 1, kName, 1);
  const int32_t hostBlocks = int32Arg(info, 2, kName, 0);
  requireDevice(info.Env(), kName);
  plane_ = cudaGuarded(info.Env(), [&] {
    return std::make_shared<CudaDataPlane>(static_cast<int64_t>(bytesPerBlock), deviceBlocks,
                                           hostBlocks);
  });
  info.This().As<Napi::Object>().TypeTag(&kCudaDataPlaneTag);
}

std::shared_ptr<CudaDataPlane> CudaDataPlaneWrap::Shared(Napi::Value value) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kCudaDataPlaneTag)) return nullptr;
  return Unwrap(value.As<Napi::Object>())->plane_;
}

CudaDataPlane& CudaDataPlaneWrap::plane(const Napi::CallbackInfo& info) const {
  return live(info.Env(), plane_, kName);
}

// execute(srcTier, srcSlot, dstTier, dstSlot, stageStarts): an empty
// stageStarts lets the plane split the plan into stages itself.
Napi::Value CudaDataPlaneWrap::Execute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaDataPlane& target = plane(info);
  const char* op = "execute";
  auto srcTier = bytesArg(info, 0, op);
  auto srcSlot = idsArg(info, 1, op);
  auto dstTier = bytesArg(info, 2, op);
  auto dstSlot = idsArg(info, 3, op);
  auto stageStarts = idsArg(info, 4, op);
  const size_t n = srcSlot.ElementLength();
  if (srcTier.ElementLength() != n || dstTier.ElementLength() != n ||
      dstSlot.ElementLength() != n) {
    throw Napi::RangeError::New(env, std::string(op) + ": copy plan arrays differ in length");
  }
  const CopyPlanView view{srcTier.Data(), srcSlot.Data(), dstTier.Data(), dstSlot.Data(),
                          lengthOf(srcSlot, env, op)};
  const int32_t stageCount = lengthOf(stageStarts, env, op);
  guarded(env, [&] { target.validate(view); });
  // The plane copies the lists before returning, so the arrays may change
  // while the copies are still queued.
  cudaGuarded(env, [&] {
    target.execute(view, stageCount > 0 ? stageStarts.Data() : nullptr, stageCount);
  });
  return env.Undefined();
}

// prefetch(hostSlots, deviceSlots): host -> device copies on the prefetch
// stream.
Napi::Value CudaDataPlaneWrap::Prefetch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaDataPlane& target = plane(info);
  const char* op = "prefetch";
  auto hostSlots = idsArg(info, 0, op);
  auto deviceSlots = idsArg(info, 1, op);
  if (hostSlots.ElementLength() != deviceSlots.ElementLength()) {
    throw Napi::RangeError::New(env,
                                std::string(op) + ": hostSlots and deviceSlots differ in length");
  }
  const int32_t count = lengthOf(hostSlots, env, op);
  cudaGuarded(env, [&] { target.prefetch(hostSlots.Data(), deviceSlots.Data(), count); });
  return env.Undefined();
}

Napi::Value CudaDataPlaneWrap::WaitForPrefetch(const Napi::CallbackInfo& info) {
  CudaDataPlane& target = plane(info);
  cudaGuarded(info.Env(), [&] { target.waitForPrefetch(); });
  return info.Env().Undefined();
}

Napi::Value CudaDataPlaneWrap::PrefetchComplete(const Napi::CallbackInfo& info) {
  CudaDataPlane& target = plane(info);
  return Napi::Boolean::New(info.Env(),
                            cudaGuarded(info.Env(), [&] { return target.prefetchComplete(); }));
}

Napi::Value CudaDataPlaneWrap::Synchronize(const Napi::CallbackInfo& info) {
  CudaDataPlane& target = plane(info);
  cudaGuarded(info.Env(), [&] { target.synchronize(); });
  return info.Env().Undefined();
}

// (tier, slot) arguments 0 and 1, checked against the pool sizes.
int32_t CudaDataPlaneWrap::slotArg(const Napi::CallbackInfo& info, const CudaDataPlane& target,
                                   Tier* tier, const char* op) {
  *tier = static_cast<Tier>(int32Arg(info, 0, op, 1, 2));
  const int32_t limit = target.blocks(*tier);
  if (limit == 0) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": the tier has no blocks");
  }
  return int32Arg(info, 1, op, 0, limit - 1);
}

size_t CudaDataPlaneWrap::offsetOf(const CudaDataPlane& target, int32_t slot) {
  return static_cast<size_t>(slot) * static_cast<size_t>(target.bytesPerBlock());
}

// write(tier, slot, bytes): bytes.length must equal bytesPerBlock. Runs
// after the queued copies that may use the block.
Napi::Value CudaDataPlaneWrap::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaDataPlane& target = plane(info);
  Tier tier;
  const int32_t slot = slotArg(info, target, &tier, "write");
  auto bytes = bytesArg(info, 2, "write");
  const size_t size = static_cast<size_t>(target.bytesPerBlock());
  if (bytes.ElementLength() != size) {
    throw Napi::RangeError::New(env, "write: expected " + std::to_string(size) +
                                         " bytes, got " + std::to_string(bytes.ElementLength()));
  }
  cudaGuarded(env, [&] {
    if (tier == Tier::Device) {
      target.writeDevice(offsetOf(target, slot), bytes.Data(), size);
    } else {
      // Queued copies may read or write the host pool.
      target.synchronize();
      std::memcpy(target.hostPool() + offsetOf(target, slot), bytes.Data(), size);
    }
  });
  return env.Undefined();
}

// read(tier, slot) -> a copy of the block, after the queued copies.
Napi::Value CudaDataPlaneWrap::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaDataPlane& target = plane(info);
  Tier tier;
  const int32_t slot = slotArg(info, target, &tier, "read");
  const size_t size = static_cast<size_t>(target.bytesPerBlock());
  Napi::Uint8Array out = Napi::Uint8Array::New(env, size);
  cudaGuarded(env, [&] {
    if (tier == Tier::Device) {
      // Ordered after the queued copies, and after the prefetches.
      target.readDevice(offsetOf(target, slot), out.Data(), size);
    } else {
      target.synchronize();
      std::memcpy(out.Data(), target.hostPool() + offsetOf(target, slot), size);
    }
  });
  return out;
}

// Frees the pools now (after the queued copies) rather than at collection.
Napi::Value CudaDataPlaneWrap::Destroy(const Napi::CallbackInfo& info) {
  plane_.reset();
  return info.Env().Undefined();
}

}  // namespace cachesage::napi
