#pragma once

#include <napi.h>

#include <memory>

#include "cuda_backend.h"

namespace cachesage::napi {

struct SurvivalState;

// JS class `NativeCudaSurvival`: computeSurvival() on the device. Built only
// with CUDA (CACHESAGE_HAVE_CUDA); registered by ExportCuda (cuda_wrap.h).
//
//   new NativeCudaSurvival()
//     .compute(workloads, states, horizon, transitions: Float32Array,
//              endState: Int32Array) -> { reach, alive, expectedSteps }
//     .computeAsync(same) -> Promise of the same, computed off the main thread
//     .maxStates() -> number
//     .destroy()
class CudaSurvivalWrap : public Napi::ObjectWrap<CudaSurvivalWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CudaSurvivalWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Compute(const Napi::CallbackInfo& info);
  Napi::Value ComputeAsync(const Napi::CallbackInfo& info);
  Napi::Value MaxStates(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  static constexpr const char* kName = "NativeCudaSurvival";
  std::shared_ptr<SurvivalState> state_;
};

}  // namespace cachesage::napi
