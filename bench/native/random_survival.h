// Random survival batches shaped like CacheSage's, shared by the kernel
// benchmark and the CUDA test: per workload some live states (END among
// them, absorbing), absorbing padding past them, about a third of each live
// row zero, rows summing to 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "survival.h"

namespace cachesage {

struct SurvivalBatch {
  SurvivalShape shape;
  std::vector<float> transitions;
  std::vector<int32_t> endState;

  SurvivalInputView view() const {
    SurvivalInputView v;
    v.shape = shape;
    v.transitions = transitions.data();
    v.transitionsLength = transitions.size();
    v.endState = endState.data();
    v.endStateLength = endState.size();
    return v;
  }
};

// `workloads` matrices of `states` states, each with between `minLive` and
// `states` live states (1 <= minLive <= states).
inline SurvivalBatch randomSurvivalBatch(std::mt19937_64& random, int32_t workloads, int32_t states,
                                         int32_t horizon, int32_t minLive) {
  std::uniform_real_distribution<double> uniform(0, 1);
  SurvivalBatch batch;
  batch.shape = SurvivalShape{workloads, states, horizon};
  const size_t n = static_cast<size_t>(states);
  batch.transitions.assign(static_cast<size_t>(workloads) * n * n, 0.0f);
  for (int32_t w = 0; w < workloads; ++w) {
    const int32_t live = minLive + static_cast<int32_t>(random() % static_cast<uint64_t>(states - minLive + 1));
    const int32_t end = static_cast<int32_t>(random() % static_cast<uint64_t>(live));
    batch.endState.push_back(end);
    for (int32_t a = 0; a < states; ++a) {
      float* row = batch.transitions.data() + (static_cast<size_t>(w) * n + static_cast<size_t>(a)) * n;
      if (a == end || a >= live) {
        row[a] = 1.0f;
        continue;
      }
      std::vector<double> weights(static_cast<size_t>(live));
      for (double& weight : weights) weight = uniform(random) < 0.35 ? 0 : uniform(random);
      weights[static_cast<size_t>(end)] += 0.05;
      const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
      for (int32_t b = 0; b < live; ++b) row[b] = static_cast<float>(weights[static_cast<size_t>(b)] / sum);
    }
  }
  return batch;
}

}  // namespace cachesage
