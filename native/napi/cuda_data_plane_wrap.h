#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cuda_backend.h"

namespace cachesage::napi {

// JS class `NativeCudaDataPlane`: the device pool in device memory, the host
// pool in pinned host memory, copy plans and prefetches on CUDA streams.
// Built only with CUDA (CACHESAGE_HAVE_CUDA); registered by ExportCuda
// (cuda_wrap.h).
//
//   new NativeCudaDataPlane(bytesPerBlock, deviceBlocks, hostBlocks)
//     .execute(srcTier, srcSlot, dstTier, dstSlot, stageStarts)
//     .prefetch(hostSlots: Int32Array, deviceSlots: Int32Array)
//     .waitForPrefetch(), .prefetchComplete() -> boolean, .synchronize()
//     .write(tier, slot, bytes: Uint8Array), .read(tier, slot) -> Uint8Array
//     .destroy()
class CudaDataPlaneWrap : public Napi::ObjectWrap<CudaDataPlaneWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CudaDataPlaneWrap(const Napi::CallbackInfo& info);

  // The plane behind a JS NativeCudaDataPlane (checked by type tag), shared
  // so that an engine computing in its device pool keeps the memory alive
  // past destroy(); null when `value` is not one, or was destroyed.
  static std::shared_ptr<CudaDataPlane> Shared(Napi::Value value);

 private:
  static constexpr const char* kName = "NativeCudaDataPlane";

  CudaDataPlane& plane(const Napi::CallbackInfo& info) const;

  Napi::Value Execute(const Napi::CallbackInfo& info);
  Napi::Value Prefetch(const Napi::CallbackInfo& info);
  Napi::Value WaitForPrefetch(const Napi::CallbackInfo& info);
  Napi::Value PrefetchComplete(const Napi::CallbackInfo& info);
  Napi::Value Synchronize(const Napi::CallbackInfo& info);
  static int32_t slotArg(const Napi::CallbackInfo& info, const CudaDataPlane& target, Tier* tier,
                         const char* op);
  static size_t offsetOf(const CudaDataPlane& target, int32_t slot);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  std::shared_ptr<CudaDataPlane> plane_;
};

}  // namespace cachesage::napi
