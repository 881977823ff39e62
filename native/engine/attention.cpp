#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "dense.h"

// The kernels' inner loops, compiled twice where GCC can pick at load time:
// for x86-64-v3 (AVX2 and FMA) and for the baseline, so one binary runs on
// every x86-64 and uses the wider units where they exist.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CACHESAGE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CACHESAGE_VECTOR_CLONES
#endif

namespace cachesage::engine {

namespace {

// exp(x) for x <= 0 without branches, so loops over it vectorize.
inline float expNonPositive(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  x = std::max(x, -87.3f);
  const float n = std::nearbyint(x * kLog2e);
  const float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n through the exponent bits; n >= -126 here, so the result is normal.
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Asks for the K or V rows of one KV head in the next block (one
// contiguous run of blockSize x headDim floats) while this one is used:
// the blocks of a table lie anywhere in the pool, so the hardware
// prefetcher, which stops at page boundaries, cannot see them coming.
inline void prefetchRows(const float* rows, int64_t floats) {
  for (int64_t i = 0; i < floats; i += 64 / static_cast<int64_t>(sizeof(float))) __builtin_prefetch(rows + i);
}

// dot() (dense.h) for a length known at compile time, a multiple of 8: no
// remainder loop, so the compiler unrolls it whole.
template <int N>
inline float dotOf(const float* a, const float* b) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < N; i += 8) {
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// The query heads [h0, h0 + group) of one token, which share KV head
// `kvHead`, against positions [0, context): each K and V row is read once
// for the whole group. scores holds group x context floats. HD is the head
// dimension when known at compile time (the loops over it then unroll and
// each head's output stays in registers over a block), 0 for any.
template <int HD>
CACHESAGE_VECTOR_CLONES void attendGroupOf(const PagedKv& kv, int32_t layer, int32_t kvHead, int32_t group,
                                           const BlockTableView& table, int32_t context, const float* q, float* out,
                                           std::vector<float>& scores) {
  const PageLayout& L = kv.layout;
  const int32_t hd = HD > 0 ? HD : L.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  scores.resize(static_cast<size_t>(group) * static_cast<size_t>(context));
  float* s = scores.data();
  const int32_t blocks = (context + L.blockSize - 1) / L.blockSize;
  const int64_t run = L.headStride();
  for (int32_t t0 = 0, b = 0; t0 < context; t0 += L.blockSize, b++) {
    const float* keys = kv.base + L.offset(table.slots[b], layer, 0, kvHead, 0);
    if (b + 1 < blocks) prefetchRows(kv.base + L.offset(table.slots[b + 1], layer, 0, kvHead, 0), run);
    int32_t n = std::min(L.blockSize, context - t0);
    for (int32_t t = 0; t < n; t++) {
      const float* key = keys + static_cast<int64_t>(t) * hd;
      for (int32_t g = 0; g < group; g++) {
        const float* query = q + static_cast<int64_t>(g) * hd;
        float score;
        if constexpr (HD > 0) {
          score = dotOf<HD>(query, key);
        } else {
          score = dot(query, key, hd);
        }
        s[static_cast<int64_t>(g) * context + t0 + t] = score * scale;
      }
    }
  }
  for (int32_t g = 0; g < group; g++) softmaxInPlace(s + static_cast<int64_t>(g) * context, context);
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(group) * static_cast<size_t>(hd));
  for (int32_t t0 = 0, b = 0; t0 < context; t0 += L.blockSize, b++) {
    const float* values = kv.base + L.offset(table.slots[b], layer, 1, kvHead, 0);
    if (b + 1 < blocks) prefetchRows(kv.base + L.offset(table.slots[b + 1], layer, 1, kvHead, 0), run);
    int32_t n = std::min(L.blockSize, context - t0);
    for (int32_t g = 0; g < group; g++) {
      const float* weights = s + static_cast<int64_t>(g) * context + t0;
      float* o = out + static_cast<int64_t>(g) * hd;
      if constexpr (HD > 0) {
        float acc[HD];
        for (int32_t d = 0; d < HD; d++) acc[d] = o[d];
        for (int32_t t = 0; t < n; t++) {
          const float w = weights[t];
          const float* value = values + static_cast<int64_t>(t) * HD;
          for (int32_t d = 0; d < HD; d++) acc[d] += w * value[d];
        }
        for (int32_t d = 0; d < HD; d++) o[d] = acc[d];
      } else {
        for (int32_t t = 0; t < n; t++) axpy(weights[t], values + static_cast<int64_t>(t) * hd, o, hd);
      }
    }
  }
}

void attendGroup(const PagedKv& kv, int32_t layer, int32_t kvHead, int32_t group, const BlockTableView& table,
                 int32_t context, const float* q, float* out, std::vector<float>& scores) {
  switch (kv.layout.headDim) {
    case 64:
      return attendGroupOf<64>(kv, layer, kvHead, group, table, context, q, out, scores);
    case 128:
      return attendGroupOf<128>(kv, layer, kvHead, group, table, context, q, out, scores);
    default:
      return attendGroupOf<0>(kv, layer, kvHead, group, table, context, q, out, scores);
  }
}

}  // namespace

CACHESAGE_VECTOR_CLONES
void softmaxInPlace(float* row, int64_t n) {
  // Eight lanes for the maximum and the sum, so neither waits on one accumulator.
  float lanes[8];
  for (int j = 0; j < 8; j++) lanes[j] = row[0];
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    for (int j = 0; j < 8; j++) lanes[j] = std::max(lanes[j], row[t + j]);
  }
  float maximum = lanes[0];
  for (int j = 1; j < 8; j++) maximum = std::max(maximum, lanes[j]);
  for (; t < n; t++) maximum = std::max(maximum, row[t]);
  for (t = 0; t < n; t++) row[t] = expNonPositive(row[t] - maximum);
  for (int j = 0; j < 8; j++) lanes[j] = 0;
  for (t = 0; t + 8 <= n; t += 8) {
    for (int j = 0; j < 8; j++) lanes[j] += row[t + j];
  }
  float total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
  for (; t < n; t++) total += row[t];
  const float inverse = 1.0f / total;
  for (t = 0; t < n; t++) row[t] *= inverse;
}

void appendKv(const PagedKv& kv, int32_t layer, const BlockTableView& table, int32_t start, int32_t count,
              const float* k, const float* v) {
  const PageLayout& L = kv.layout;
  if (layer < 0 || layer >= L.layers) throw std::out_of_range("appendKv: layer out of range");
  if (start < 0 || count < 0) throw std::out_of_range("appendKv: start and count must be non-negative");
  checkBlockTable(kv, table, static_cast<int64_t>(start) + count, "appendKv");
  const size_t rowBytes = sizeof(float) * static_cast<size_t>(L.headDim);
  for (int32_t i = 0; i < count; i++) {
    int32_t position = start + i;
    int32_t slot = table.slots[position / L.blockSize];
    int32_t token = position % L.blockSize;
    for (int32_t h = 0; h < L.kvHeads; h++) {
      int64_t row = (static_cast<int64_t>(i) * L.kvHeads + h) * L.headDim;
      std::memcpy(kv.base + L.offset(slot, layer, 0, h, token), k + row, rowBytes);
      std::memcpy(kv.base + L.offset(slot, layer, 1, h, token), v + row, rowBytes);
    }
  }
}

void pagedPrefillAttention(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table,
                           int32_t start, int32_t count, const float* q, float* out, ThreadPool& pool) {
  const PageLayout& L = kv.layout;
  if (layer < 0 || layer >= L.layers) throw std::out_of_range("pagedPrefillAttention: layer out of range");
  if (heads < L.kvHeads || heads % L.kvHeads != 0) {
    throw std::out_of_range("pagedPrefillAttention: heads must be a multiple of the layout's kvHeads");
  }
  if (start < 0 || count < 0) throw std::out_of_range("pagedPrefillAttention: start and count must be non-negative");
  checkBlockTable(kv, table, static_cast<int64_t>(start) + count, "pagedPrefillAttention");
#ifdef CACHESAGE_HAVE_CBLAS
  if (count >= kBlasPrefillRows) {
    prefillWithGemm(kv, layer, heads, table, start, count, q, out, pool);
    return;
  }
#endif
  prefillPerRow(kv, layer, heads, table, start, count, q, out, pool);
}

void prefillPerRow(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table, int32_t start,
                   int32_t count, const float* q, float* out, ThreadPool& pool) {
  const PageLayout& L = kv.layout;
  const int32_t group = heads / L.kvHeads;
  const int64_t items = static_cast<int64_t>(count) * L.kvHeads;
  pool.parallelFor(items, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; item++) {
      int32_t i = static_cast<int32_t>(item / L.kvHeads);
      int32_t g = static_cast<int32_t>(item % L.kvHeads);
      int64_t row = (static_cast<int64_t>(i) * heads + g * group) * L.headDim;
      attendGroup(kv, layer, g, group, table, start + i + 1, q + row, out + row, scores);
    }
  });
}

void pagedDecodeAttention(const PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
                          const BlockTableView* tables, const int32_t* positions, const float* q, float* out,
                          ThreadPool& pool) {
  const PageLayout& L = kv.layout;
  if (layer < 0 || layer >= L.layers) throw std::out_of_range("pagedDecodeAttention: layer out of range");
  if (heads < L.kvHeads || heads % L.kvHeads != 0) {
    throw std::out_of_range("pagedDecodeAttention: heads must be a multiple of the layout's kvHeads");
  }
  for (int32_t s = 0; s < batch; s++) {
    if (positions[s] < 0) throw std::out_of_range("pagedDecodeAttention: positions must be non-negative");
    checkBlockTable(kv, tables[s], static_cast<int64_t>(positions[s]) + 1, "pagedDecodeAttention");
  }
  const int32_t group = heads / L.kvHeads;
  pool.parallelFor(static_cast<int64_t>(batch) * L.kvHeads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; item++) {
      int32_t s = static_cast<int32_t>(item / L.kvHeads);
      int32_t g = static_cast<int32_t>(item % L.kvHeads);
      int64_t row = (static_cast<int64_t>(s) * heads + g * group) * L.headDim;
      attendGroup(kv, layer, g, group, tables[s], positions[s] + 1, q + row, out + row, scores);
    }
  });
}

void referenceAttention(int32_t heads, int32_t kvHeads, int32_t headDim, int32_t start, int32_t count,
                        const float* q, const float* k, const float* v, float* out) {
  const int32_t group = heads / kvHeads;
  std::vector<double> weights;
  for (int32_t i = 0; i < count; i++) {
    int32_t context = start + i + 1;
    for (int32_t h = 0; h < heads; h++) {
      const float* query = q + (static_cast<int64_t>(i) * heads + h) * headDim;
      int32_t g = h / group;
      weights.assign(static_cast<size_t>(context), 0.0);
      double maximum = -INFINITY;
      for (int32_t t = 0; t < context; t++) {
        const float* key = k + (static_cast<int64_t>(t) * kvHeads + g) * headDim;
        double s = 0;
        for (int32_t d = 0; d < headDim; d++) s += static_cast<double>(query[d]) * key[d];
        s /= std::sqrt(static_cast<double>(headDim));
        weights[static_cast<size_t>(t)] = s;
        maximum = std::max(maximum, s);
      }
      double total = 0;
      for (auto& w : weights) total += (w = std::exp(w - maximum));
      float* o = out + (static_cast<int64_t>(i) * heads + h) * headDim;
      for (int32_t d = 0; d < headDim; d++) {
        double sum = 0;
        for (int32_t t = 0; t < context; t++) {
          sum += weights[static_cast<size_t>(t)] * v[(static_cast<int64_t>(t) * kvHeads + g) * headDim + d];
        }
        o[d] = static_cast<float>(sum / total);
      }
    }
  }
}

}  // namespace cachesage::engine
