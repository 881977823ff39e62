// Chained 64-bit block hashes computed from token ids.
//
// hash(block) = fmix64(state) where state starts from the parent's hash and
// the block size, then absorbs each token id. Equal hashes mean equal token
// prefixes (up to 64-bit collisions). The TypeScript twin is
// src/blocks/hash.ts; both must produce identical values.
#pragma once

#include <cstdint>

namespace cachesage {

constexpr uint64_t kHashSeed = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kHashTokenMul = 0xc2b2ae3d27d4eb4fULL;
constexpr uint64_t kHashRoundMul = 0x165667b19e3779f9ULL;
constexpr uint64_t kHashRoundAdd = 0x27d4eb2f165667c5ULL;

inline uint64_t fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

inline uint64_t hashBlock(uint64_t parent, const uint32_t* tokens, int32_t count) {
  uint64_t state = parent ^ (kHashSeed * static_cast<uint64_t>(count + 1));
  for (int32_t i = 0; i < count; ++i) {
    state ^= static_cast<uint64_t>(tokens[i]) * kHashTokenMul;
    state = ((state << 27) | (state >> 37)) * kHashRoundMul + kHashRoundAdd;
  }
  return fmix64(state);
}

// Writes floor(count / blockSize) chained hashes to `out`; returns how many.
inline int32_t hashTokenBlocks(const uint32_t* tokens, int64_t count, int32_t blockSize,
                               uint64_t parent, uint64_t* out) {
  int32_t blocks = static_cast<int32_t>(count / blockSize);
  for (int32_t b = 0; b < blocks; ++b) {
    parent = hashBlock(parent, tokens + static_cast<int64_t>(b) * blockSize, blockSize);
    out[b] = parent;
  }
  return blocks;
}

}  // namespace cachesage
