#pragma once

#include <napi.h>

#include <cstdint>

#include "hit_scoring.h"

namespace cachesage::napi {

// The arguments of hitScoring() and NativeCudaHitScorer.selectVictims():
// tier, committed (Uint8Array), refCount, deviceChildren (Int32Array),
// lastAccess (Float64Array), score (Float32Array), scoreClass (Int32Array),
// classScores (Float32Array), k. Checked for types, one entry per block id
// and k in [0, 2^31); class indices and finite scores are left to the
// scorers, which refuse them with std::out_of_range. The pointers are valid
// for the duration of the call.
struct HitScoringArgs {
  HitScoringInput input;
  int32_t k = 0;  // at most input.blocks: more victims than blocks cannot exist
};

HitScoringArgs hitScoringArgs(const Napi::CallbackInfo& info, const char* op);

// hitScoring(tier, committed, refCount, deviceChildren, lastAccess, score,
//            scoreClass, classScores, k)
//   -> { scores: Float32Array (one per block id), victims: Int32Array
//        (at most k ids, first victim first) }, on the CPU.
Napi::Value HitScoring(const Napi::CallbackInfo& info);

}  // namespace cachesage::napi
