#pragma once

#include <napi.h>

#include <memory>

#include "cuda_backend.h"

namespace cachesage::napi {

struct HitScorerState;

// JS class `NativeCudaHitScorer`: hit scoring and victim selection on the
// device. Built only with CUDA (CACHESAGE_HAVE_CUDA); registered by
// ExportCuda (cuda_wrap.h).
//
//   new NativeCudaHitScorer()
//     .selectVictims(tier, committed, refCount, deviceChildren, lastAccess,
//                    score, scoreClass, classScores, k) -> { scores, victims }
//     .selectVictimsAsync(same) -> Promise of the same, off the main thread
//     .destroy()
//
// The arguments are hitScoring()'s (hit_scoring_wrap.h).
class CudaHitScorerWrap : public Napi::ObjectWrap<CudaHitScorerWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CudaHitScorerWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value SelectVictims(const Napi::CallbackInfo& info);
  Napi::Value SelectVictimsAsync(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  static constexpr const char* kName = "NativeCudaHitScorer";
  std::shared_ptr<HitScorerState> state_;
};

}  // namespace cachesage::napi
