#include "survival.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace cachesage {

namespace {

// Numbers in messages read the way JavaScript prints them, so the native and
// TypeScript errors for the same input look alike.
std::string formatNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.9g", value);
  return buffer;
}

void checkRange(int64_t value, const char* name, int64_t min, int64_t max) {
  if (value < min || value > max) {
    throw std::out_of_range(std::string("survival: ") + name + " must be in [" +
                            std::to_string(min) + ", " + std::to_string(max) + "], got " +
                            std::to_string(value));
  }
}

}  // namespace

size_t SurvivalShape::transitionsSize() const {
  return static_cast<size_t>(workloads) * static_cast<size_t>(states) *
         static_cast<size_t>(states);
}

size_t SurvivalShape::reachSize() const {
  return transitionsSize() * static_cast<size_t>(horizon);
}

size_t SurvivalShape::aliveSize() const {
  return static_cast<size_t>(workloads) * static_cast<size_t>(horizon) *
         static_cast<size_t>(states);
}

size_t SurvivalShape::expectedStepsSize() const { return transitionsSize(); }

void SurvivalShape::check() const {
  checkRange(workloads, "workloads", 1, kMaxSurvivalWorkloads);
  checkRange(states, "states", 1, kMaxSurvivalStates);
  checkRange(horizon, "horizon", 1, kMaxSurvivalHorizon);
  // Each factor is at most 2^20, 2^10, 2^10 and 2^8, so the product fits.
  const int64_t reach = int64_t{workloads} * horizon * states * states;
  if (reach > kMaxSurvivalReach) {
    throw std::out_of_range("survival: workloads x horizon x states^2 = " + std::to_string(reach) +
                            " exceeds the limit " + std::to_string(kMaxSurvivalReach));
  }
}

void validateSurvivalInput(const SurvivalInputView& input) {
  const SurvivalShape& shape = input.shape;
  shape.check();
  const size_t n = static_cast<size_t>(shape.states);
  if (input.transitionsLength != shape.transitionsSize() || input.transitions == nullptr) {
    throw std::out_of_range("survival: transitions has length " +
                            std::to_string(input.transitionsLength) +
                            ", expected workloads x states^2 = " +
                            std::to_string(shape.transitionsSize()));
  }
  if (input.endStateLength != static_cast<size_t>(shape.workloads) || input.endState == nullptr) {
    throw std::out_of_range("survival: endState has length " +
                            std::to_string(input.endStateLength) +
                            ", expected workloads = " + std::to_string(shape.workloads));
  }
  for (size_t w = 0; w < static_cast<size_t>(shape.workloads); w++) {
    const int32_t end = input.endState[w];
    if (end < 0 || end >= shape.states) {
      throw std::out_of_range("survival: endState[" + std::to_string(w) + "] = " +
                              std::to_string(end) + " is out of range [0, " +
                              std::to_string(shape.states) + ")");
    }
    for (size_t a = 0; a < n; a++) {
      const size_t row = (w * n + a) * n;
      double sum = 0;
      for (size_t b = 0; b < n; b++) {
        const float p = input.transitions[row + b];
        if (!std::isfinite(p) || p < 0) {
          throw std::out_of_range("survival: transitions[" + std::to_string(row + b) +
                                  "] (workload " + std::to_string(w) + ", row " +
                                  std::to_string(a) + ", column " + std::to_string(b) +
                                  ") must be finite and >= 0, got " + formatNumber(p));
        }
        sum += p;
      }
      if (std::fabs(sum - 1.0) > kSurvivalRowSumTolerance) {
        throw std::out_of_range("survival: row " + std::to_string(a) + " of workload " +
                                std::to_string(w) + " sums to " + formatNumber(sum) +
                                ", expected 1 within " + formatNumber(kSurvivalRowSumTolerance));
      }
    }
  }
}

void computeSurvival(const SurvivalInputView& input, float* reach, float* alive,
                     float* expectedSteps) {
  validateSurvivalInput(input);
  if (reach == nullptr || alive == nullptr || expectedSteps == nullptr) {
    throw std::invalid_argument("survival: output buffers must not be null");
  }
  const size_t n = static_cast<size_t>(input.shape.states);
  const size_t nn = n * n;
  const int32_t horizon = input.shape.horizon;

  // For all targets b at once: with F_{h-1} as a matrix (column b is
  // f_{h-1} for target b), the first-visit recursion
  //   F_h[a][b] = T[a][b] + sum_{c != b} T[a][c] F_{h-1}[c][b]
  // is the product T F_{h-1} with the c = b term replaced by T[a][b]:
  //   F_h[a][b] = (T F_{h-1})[a][b] + T[a][b] (1 - F_{h-1}[b][b]).
  // One dense product per step keeps the inner loop contiguous.
  std::vector<double> T(nn), previous(nn), current(nn), expected(nn);
  std::vector<double> endPrevious(n), endCurrent(n);

  for (size_t w = 0; w < static_cast<size_t>(input.shape.workloads); w++) {
    const float* source = input.transitions + w * nn;
    std::copy(source, source + nn, T.begin());
    std::fill(previous.begin(), previous.end(), 0.0);  // F_0
    std::fill(expected.begin(), expected.end(), 1.0);  // the h = 0 term, 1 - F_0
    float* reachW = reach + w * static_cast<size_t>(horizon) * nn;

    for (int32_t h = 1; h <= horizon; h++) {
      for (size_t a = 0; a < n; a++) {
        double* out = current.data() + a * n;
        const double* tRow = T.data() + a * n;
        for (size_t b = 0; b < n; b++) out[b] = tRow[b] * (1.0 - previous[b * n + b]);
        for (size_t c = 0; c < n; c++) {
          const double t = tRow[c];
          if (t == 0.0) continue;
          const double* fRow = previous.data() + c * n;
          for (size_t b = 0; b < n; b++) out[b] += t * fRow[b];
        }
      }
      float* reachH = reachW + static_cast<size_t>(h - 1) * nn;
      for (size_t k = 0; k < nn; k++) reachH[k] = static_cast<float>(current[k]);
      if (h < horizon) {
        for (size_t k = 0; k < nn; k++) expected[k] += 1.0 - current[k];
      }
      previous.swap(current);
    }
    float* expectedW = expectedSteps + w * nn;
    for (size_t k = 0; k < nn; k++) expectedW[k] = static_cast<float>(expected[k]);

    // (T^h)[a][END] = sum_c T[a][c] (T^{h-1})[c][END].
    std::fill(endPrevious.begin(), endPrevious.end(), 0.0);
    endPrevious[static_cast<size_t>(input.endState[w])] = 1.0;
    float* aliveW = alive + w * static_cast<size_t>(horizon) * n;
    for (int32_t h = 1; h <= horizon; h++) {
      for (size_t a = 0; a < n; a++) {
        const double* tRow = T.data() + a * n;
        double g = 0;
        for (size_t c = 0; c < n; c++) g += tRow[c] * endPrevious[c];
        endCurrent[a] = g;
      }
      float* aliveH = aliveW + static_cast<size_t>(h - 1) * n;
      for (size_t a = 0; a < n; a++) aliveH[a] = static_cast<float>(1.0 - endCurrent[a]);
      endPrevious.swap(endCurrent);
    }
  }
}

}  // namespace cachesage
