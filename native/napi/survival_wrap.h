#pragma once

#include <napi.h>

namespace cachesage::napi {

// computeSurvival(workloads, states, horizon, transitions: Float32Array,
//                 endState: Int32Array)
//   -> { reach, alive, expectedSteps }: Float32Arrays laid out as in
//      native/core/survival.h.
Napi::Value ComputeSurvival(const Napi::CallbackInfo& info);

}  // namespace cachesage::napi
