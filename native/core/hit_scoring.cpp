#include "hit_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_manager.h"

namespace cachesage {

namespace {

struct Candidate {
  float score;
  int32_t id;
  uint64_t lastAccess;  // orderedBits(lastAccess)
};

// An unsigned image of the double that sorts like the value, with -0 made
// +0 first (the two compare equal). Unlike `<` it is a total order even
// with NaN, so the sort below never sees an inconsistent comparison; it is
// also the key the CUDA scorer sorts on.
uint64_t orderedBits(double value) {
  const double normalized = value == 0.0 ? 0.0 : value;
  uint64_t bits = 0;
  std::memcpy(&bits, &normalized, sizeof bits);
  return (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
}

// Effective scores are finite here, so `<` on them is a total order in
// which -0 and 0 tie.
bool evictedBefore(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.lastAccess != b.lastAccess) return a.lastAccess < b.lastAccess;
  return a.id < b.id;
}

}  // namespace

void checkHitScoringArguments(const HitScoringInput& input, int32_t k, const int32_t* victims) {
  if (input.blocks < 0) throw std::out_of_range("hit scoring: blocks must be >= 0");
  if (input.classes < 0) throw std::out_of_range("hit scoring: classes must be >= 0");
  if (k < 0) throw std::out_of_range("hit scoring: k must be >= 0");
  if (input.blocks > 0 &&
      (input.tier == nullptr || input.committed == nullptr || input.refCount == nullptr ||
       input.deviceChildren == nullptr || input.lastAccess == nullptr || input.score == nullptr ||
       input.scoreClass == nullptr)) {
    throw std::invalid_argument("hit scoring: metadata arrays must not be null");
  }
  if (input.classes > 0 && input.classScore == nullptr) {
    throw std::invalid_argument("hit scoring: classScore must not be null when classes > 0");
  }
  if (k > 0 && victims == nullptr) {
    throw std::invalid_argument("hit scoring: victims must not be null when k > 0");
  }
}

int32_t selectVictims(const HitScoringInput& input, int32_t k, int32_t* victims,
                      float* effectiveScores) {
  checkHitScoringArguments(input, k, victims);
  constexpr uint8_t kDevice = static_cast<uint8_t>(Tier::Device);
  std::vector<Candidate> candidates;
  int32_t badScore = -1;  // lowest block with a non-finite effective score
  for (int32_t id = 0; id < input.blocks; ++id) {
    const int32_t scoreClass = input.scoreClass[id];
    float score = input.score[id];
    if (scoreClass >= 0) {
      // Ids ascend, so the first bad class seen is the lowest; a bad class
      // is reported before any bad score, as the CUDA scorer does.
      if (scoreClass >= input.classes) {
        throw std::out_of_range("hit scoring: block " + std::to_string(id) + " has score class " +
                                std::to_string(scoreClass) + ", but there are only " +
                                std::to_string(input.classes) + " classes");
      }
      score = input.classScore[scoreClass];
    }
    if (!std::isfinite(score)) {
      if (badScore < 0) badScore = id;
      continue;
    }
    if (effectiveScores != nullptr) effectiveScores[id] = score;
    if (k > 0 && input.tier[id] == kDevice && input.committed[id] == 1 && input.refCount[id] == 0 &&
        input.deviceChildren[id] == 0) {
      candidates.push_back({score, id, orderedBits(input.lastAccess[id])});
    }
  }
  if (badScore >= 0) {
    throw std::out_of_range("hit scoring: block " + std::to_string(badScore) +
                            " has an effective score that is not finite");
  }

  const size_t count = std::min(static_cast<size_t>(k), candidates.size());
  const auto first = candidates.begin();
  const auto last = first + static_cast<std::ptrdiff_t>(count);
  if (count < candidates.size()) std::nth_element(first, last, candidates.end(), evictedBefore);
  std::sort(first, last, evictedBefore);
  for (size_t i = 0; i < count; ++i) victims[i] = candidates[i].id;
  return static_cast<int32_t>(count);
}

}  // namespace cachesage
