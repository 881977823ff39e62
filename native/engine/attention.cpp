#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "dense.h"

namespace cachesage::engine {

namespace {

// The query heads [h0, h0 + group) of one token, which share KV head
// `kvHead`, against positions [0, context): each K and V row is read once
// for the whole group. scores holds group x context floats.
void attendGroup(const PagedKv& kv, int32_t layer, int32_t kvHead, int32_t group, const BlockTableView& table,
                 int32_t context, const float* q, float* out, std::vector<float>& scores) {
  const PageLayout& L = kv.layout;
  const int32_t hd = L.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  scores.resize(static_cast<size_t>(group) * static_cast<size_t>(context));
  float* s = scores.data();
  for (int32_t t0 = 0, b = 0; t0 < context; t0 += L.blockSize, b++) {
    const float* keys = kv.base + L.offset(table.slots[b], layer, 0, kvHead, 0);
    int32_t n = std::min(L.blockSize, context - t0);
    for (int32_t t = 0; t < n; t++) {
      const float* key = keys + static_cast<int64_t>(t) * hd;
      for (int32_t g = 0; g < group; g++) s[static_cast<int64_t>(g) * context + t0 + t] = dot(q + static_cast<int64_t>(g) * hd, key, hd) * scale;
    }
  }
  for (int32_t g = 0; g < group; g++) {
    float* row = s + static_cast<int64_t>(g) * context;
    float maximum = *std::max_element(row, row + context);
    float total = 0;
    for (int32_t t = 0; t < context; t++) total += (row[t] = std::exp(row[t] - maximum));
    float inverse = 1.0f / total;
    for (int32_t t = 0; t < context; t++) row[t] *= inverse;
  }
  std::memset(out, 0, sizeof(float) * static_cast<size_t>(group) * static_cast<size_t>(hd));
  for (int32_t t0 = 0, b = 0; t0 < context; t0 += L.blockSize, b++) {
    const float* values = kv.base + L.offset(table.slots[b], layer, 1, kvHead, 0);
    int32_t n = std::min(L.blockSize, context - t0);
    for (int32_t t = 0; t < n; t++) {
      const float* value = values + static_cast<int64_t>(t) * hd;
      for (int32_t g = 0; g < group; g++) axpy(s[static_cast<int64_t>(g) * context + t0 + t], value, out + static_cast<int64_t>(g) * hd, hd);
    }
  }
}

}  // namespace

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
