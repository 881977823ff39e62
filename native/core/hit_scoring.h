// Hit scoring on the CPU: every block's effective score and the k blocks
// that go first in the block manager's device eviction order, computed from
// the metadata arrays in one pass rather than from the eviction heap.
//
// Plain C++ with no Node or N-API includes. The TypeScript reference
// (referenceHitScoring in src/compute/hit_scoring.ts) computes the same result and
// is the oracle for this file; the CUDA scorer (kernels/cuda/cuda_backend.h)
// reads the same HitScoringInput.
#pragma once

#include <cstdint>

namespace cachesage {

// What hit scoring reads, per block id: the BlockMetadata arrays, plus the
// per-class scores. Either all host pointers or all device pointers,
// depending on the call they are passed to (this file takes host ones).
struct HitScoringInput {
  int32_t blocks = 0;
  const uint8_t* tier = nullptr;
  const uint8_t* committed = nullptr;
  const int32_t* refCount = nullptr;
  const int32_t* deviceChildren = nullptr;
  const double* lastAccess = nullptr;
  const float* score = nullptr;
  const int32_t* scoreClass = nullptr;
  const float* classScore = nullptr;
  int32_t classes = 0;
};

// The size and pointer checks both scorers make before reading anything:
// std::out_of_range for negative sizes or k, std::invalid_argument for a null
// array that the sizes say is read or written.
void checkHitScoringArguments(const HitScoringInput& input, int32_t k, const int32_t* victims);

// Writes every block's effective score (its class's score when scoreClass
// >= 0, else its own) to `effectiveScores` (input.blocks floats; may be
// null) and the first min(k, evictable) evictable blocks in eviction order
// to `victims` (k ints; may be null when k is 0); returns how many victims.
//
// Evictable: device tier, committed == 1, refCount 0, no device children.
// Order: effective score ascending (as numbers, so -0 ties with 0), then
// lastAccess ascending, then id ascending. A NaN lastAccess orders by its
// bits, after +Infinity when positive, as the CUDA scorer orders it.
// Cost: O(blocks + k log k).
//
// Throws std::out_of_range naming the lowest block with a score class >=
// classes, else the lowest block whose effective score is not finite (the
// CUDA scorer's checks and messages), and for negative sizes or k;
// std::invalid_argument for null arrays. The outputs are unspecified after
// a throw.
int32_t selectVictims(const HitScoringInput& input, int32_t k, int32_t* victims,
                      float* effectiveScores = nullptr);

}  // namespace cachesage
