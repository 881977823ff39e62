// Batched survival computation for CacheSage (../shared/design/cachesage.md,
// section 2): per workload, the probability that each state is visited
// within h steps from each start state, the probability the session is
// still alive after h steps, and the truncated expected steps until each
// state is visited.
//
// Plain C++ with no Node or N-API includes. The TypeScript reference
// (src/compute/survival.ts) computes the same quantities and is
// the oracle for this file.
//
// Layouts (all row-major, n = states, H = horizon):
//   transitions   [workloads][n][n]    rows sum to 1, padding states absorbing
//   endState      [workloads]          index of END in each workload
//   reach         [workloads][H][n][n] F_h(a, b), h = 1..H
//   alive         [workloads][H][n]    1 - (T^h)[a][END], h = 1..H
//   expectedSteps [workloads][n][n]    sum_{h=0}^{H-1} (1 - F_h(a, b)), F_0 = 0
//
// Errors: bad sizes or values throw std::out_of_range before any output is
// written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cachesage {

constexpr int32_t kMaxSurvivalStates = 1024;
constexpr int32_t kMaxSurvivalHorizon = 256;
constexpr int32_t kMaxSurvivalWorkloads = 1 << 20;
// Largest reach output (workloads * H * n * n floats): 1 GiB.
constexpr int64_t kMaxSurvivalReach = int64_t{1} << 28;
constexpr double kSurvivalRowSumTolerance = 1e-3;

struct SurvivalShape {
  int32_t workloads = 0;
  int32_t states = 0;
  int32_t horizon = 0;

  // Valid only after check() has passed.
  size_t transitionsSize() const;
  size_t reachSize() const;
  size_t aliveSize() const;
  size_t expectedStepsSize() const;

  // Throws std::out_of_range unless every size is in range and the outputs
  // fit the limits above.
  void check() const;
};

struct SurvivalInputView {
  SurvivalShape shape;
  const float* transitions = nullptr;
  size_t transitionsLength = 0;
  const int32_t* endState = nullptr;
  size_t endStateLength = 0;
};

// Checks sizes, lengths, finite non-negative entries, row sums and END
// indices; throws std::out_of_range naming the first offender.
void validateSurvivalInput(const SurvivalInputView& input);

// Validates `input`, then fills the three outputs, which must hold
// shape.reachSize(), aliveSize() and expectedStepsSize() floats.
// Accumulates in double.
void computeSurvival(const SurvivalInputView& input, float* reach, float* alive,
                     float* expectedSteps);

}  // namespace cachesage
