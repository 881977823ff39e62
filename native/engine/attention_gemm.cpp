// Prefill attention as matrix products on a CBLAS library: each KV head's
// blocks are gathered into contiguous K and V, and every tile of query rows
// takes S = Q K^T over the keys the tile can see, a causal softmax, then
// S V. Same result as the per-row kernel (attention.cpp) up to float
// rounding; both are tested against referenceAttention.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention.h"
#include "dense.h"

#ifdef CACHESAGE_HAVE_CBLAS
#include <cblas.h>
#endif

namespace cachesage::engine {

#ifdef CACHESAGE_HAVE_CBLAS

namespace {

constexpr int32_t kTileRows = 128;

// Keys (kv = 0) or values (kv = 1) of positions [0, context) of one KV head, contiguous.
void gather(const PagedKv& kv, int32_t layer, int32_t which, int32_t kvHead, const BlockTableView& table,
            int32_t context, float* dst) {
  const PageLayout& L = kv.layout;
  for (int32_t t0 = 0, b = 0; t0 < context; t0 += L.blockSize, b++) {
    int32_t n = std::min(L.blockSize, context - t0);
    std::memcpy(dst + static_cast<int64_t>(t0) * L.headDim, kv.base + L.offset(table.slots[b], layer, which, kvHead, 0),
                sizeof(float) * static_cast<size_t>(n) * static_cast<size_t>(L.headDim));
  }
}

}  // namespace

void prefillWithGemm(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table, int32_t start,
                     int32_t count, const float* q, float* out, ThreadPool& pool) {
  useBlasSingleThreaded();
  const PageLayout& L = kv.layout;
  const int32_t hd = L.headDim;
  const int32_t group = heads / L.kvHeads;
  const int32_t context = start + count;
  const int32_t rowStride = heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t perHead = static_cast<int64_t>(context) * hd;
  // Every KV head's keys and values, contiguous; then each (query head,
  // tile of rows) is one item for the pool, with its own scores.
  std::vector<float> keys(static_cast<size_t>(perHead * L.kvHeads)), values(keys.size());
  pool.parallelFor(L.kvHeads, [&](int64_t begin, int64_t end) {
    for (auto g = static_cast<int32_t>(begin); g < end; g++) {
      gather(kv, layer, 0, g, table, context, keys.data() + g * perHead);
      gather(kv, layer, 1, g, table, context, values.data() + g * perHead);
    }
  });
  const int32_t tiles = (count + kTileRows - 1) / kTileRows;
  pool.parallelFor(static_cast<int64_t>(heads) * tiles, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t item = begin; item < end; item++) {
      const auto h = static_cast<int32_t>(item / tiles);
      const int32_t q0 = static_cast<int32_t>(item % tiles) * kTileRows;
      const float* headKeys = keys.data() + (h / group) * perHead;
      const float* headValues = values.data() + (h / group) * perHead;
      const int32_t rows = std::min(kTileRows, count - q0);
      const int32_t visible = start + q0 + rows;  // the tile's last row sees this many keys
      scores.resize(static_cast<size_t>(rows) * static_cast<size_t>(visible));
      const float* tileQ = q + static_cast<int64_t>(q0) * rowStride + static_cast<int64_t>(h) * hd;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, visible, hd, scale, tileQ, rowStride, headKeys, hd,
                  0.0f, scores.data(), visible);
      for (int32_t i = 0; i < rows; i++) {
        float* row = scores.data() + static_cast<int64_t>(i) * visible;
        const int32_t seen = start + q0 + i + 1;  // causal: positions [0, start + q0 + i]
        softmaxInPlace(row, seen);
        std::fill(row + seen, row + visible, 0.0f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, visible, 1.0f, scores.data(), visible,
                  headValues, hd, 0.0f, out + static_cast<int64_t>(q0) * rowStride + static_cast<int64_t>(h) * hd,
                  rowStride);
    }
  });
}

#endif  // CACHESAGE_HAVE_CBLAS

}  // namespace cachesage::engine
