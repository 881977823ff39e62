#pragma once

#include <napi.h>

#include "survival.h"

namespace cachesage::napi {

// Reads (workloads, states, horizon, transitions: Float32Array, endState:
// Int32Array) from arguments 0..4 and validates them as computeSurvival()
// does, throwing a JS TypeError/RangeError. The view points into the
// argument arrays, valid for the call.
SurvivalInputView survivalInputArgs(const Napi::CallbackInfo& info, const char* op);

// computeSurvival(workloads, states, horizon, transitions: Float32Array,
//                 endState: Int32Array)
//   -> { reach, alive, expectedSteps }: Float32Arrays laid out as in
//      native/core/survival.h.
Napi::Value ComputeSurvival(const Napi::CallbackInfo& info);

}  // namespace cachesage::napi
