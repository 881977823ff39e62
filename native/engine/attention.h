// The paged attention kernels: KV append, prefill attention and decode
// attention, all over the page layout of model_config.h. Queries are
// [tokens][heads][headDim] and already rotated; K and V rows are
// [tokens][kvHeads][headDim].
#pragma once

#include <cstdint>

#include "model_config.h"
#include "thread_pool.h"

namespace cachesage::engine {

// Writes the K and V rows of `count` tokens at positions [start, start + count)
// of one layer into the request's blocks.
void appendKv(const PagedKv& kv, int32_t layer, const BlockTableView& table, int32_t start, int32_t count,
              const float* k, const float* v);

// Prefill: query i of a chunk sits at position start + i and attends
// causally to positions [0, start + i]: the cached blocks and the chunk
// itself, whose K/V must already be appended.
void pagedPrefillAttention(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table,
                           int32_t start, int32_t count, const float* q, float* out, ThreadPool& pool);

// Decode: one query per sequence, sequence s at position positions[s]
// attending to [0, positions[s]] through tables[s].
void pagedDecodeAttention(const PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
                          const BlockTableView* tables, const int32_t* positions, const float* q, float* out,
                          ThreadPool& pool);

// Chunks of at least this many rows take the matrix-product path
// (prefillWithGemm) when a CBLAS library is built in: from two rows on it
// is the faster one (a chunk of 8 after 1,024 cached tokens: 0.35 ms
// against 0.55 ms per-row on 2 cores, tiny model), and one row is a decode.
constexpr int32_t kBlasPrefillRows = 2;

// pagedPrefillAttention row by row (each query's heads of one KV group
// against its visible keys, read block by block); arguments already checked.
// The path of builds without CBLAS, and of one-row chunks.
void prefillPerRow(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table, int32_t start,
                   int32_t count, const float* q, float* out, ThreadPool& pool);

// pagedPrefillAttention through CBLAS matrix products (attention_gemm.cpp,
// defined only in builds with CBLAS); arguments already checked.
void prefillWithGemm(const PagedKv& kv, int32_t layer, int32_t heads, const BlockTableView& table, int32_t start,
                     int32_t count, const float* q, float* out, ThreadPool& pool);

// Softmax in place over row[0, n), n >= 1: exp(x - max) / sum. Its exp is
// a polynomial the compiler vectorizes (Cephes' expf: range reduction by
// ln 2, degree-6 polynomial), within a few ulp of std::exp on the
// arguments a softmax sees (<= 0); below -87.3 it is 0.
void softmaxInPlace(float* row, int64_t n);

// The oracle: causal attention over dense K/V of `start + count` positions
// ([position][kvHeads][headDim]), in plain loops accumulated in double.
void referenceAttention(int32_t heads, int32_t kvHeads, int32_t headDim, int32_t start, int32_t count,
                        const float* q, const float* k, const float* v, float* out);

}  // namespace cachesage::engine
