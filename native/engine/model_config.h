// The shape of a Llama-architecture decoder, and the paged KV layout the
// engine keeps it in.
#pragma once

#include <cstdint>

namespace cachesage::engine {

struct ModelConfig {
  int32_t layers = 2;
  int32_t modelDim = 64;
  int32_t heads = 4;
  // Grouped-query attention: query head h reads KV head h / (heads / kvHeads).
  int32_t kvHeads = 2;
  int32_t ffnDim = 128;
  int32_t vocab = 256;
  float ropeTheta = 10000.0f;
  float normEps = 1e-5f;
  // The output head is the embedding matrix (no lm_head tensor).
  bool tiedEmbeddings = true;

  int32_t headDim() const { return modelDim / heads; }
  int32_t kvDim() const { return kvHeads * headDim(); }
};

// Throws std::out_of_range naming the first field out of range.
void validateConfig(const ModelConfig& config);

// The one page format of the engine. A block is one slot of the data
// plane's device pool and holds, as f32,
//
//   kv[layer][0 = K, 1 = V][kvHead][token in block][dim]
//
// so the K (or V) rows of one KV head of one layer in one block are a
// contiguous blockSize x headDim matrix. Strides are in floats.
struct PageLayout {
  int32_t layers = 0;
  int32_t kvHeads = 0;
  int32_t blockSize = 0;
  int32_t headDim = 0;

  int64_t tokenStride() const { return headDim; }
  int64_t headStride() const { return static_cast<int64_t>(blockSize) * headDim; }
  int64_t kvStride() const { return kvHeads * headStride(); }
  int64_t layerStride() const { return 2 * kvStride(); }
  int64_t blockStride() const { return layers * layerStride(); }
  int64_t bytesPerBlock() const { return blockStride() * static_cast<int64_t>(sizeof(float)); }

  // Offset in floats of K (kv = 0) or V (kv = 1) of one token.
  int64_t offset(int32_t slot, int32_t layer, int32_t kv, int32_t kvHead, int32_t token) const {
    return slot * blockStride() + layer * layerStride() + kv * kvStride() + kvHead * headStride() +
           token * tokenStride();
  }
};

PageLayout pageLayout(const ModelConfig& config, int32_t blockSize);

// The device pool the kernels read and write: `blocks` blocks of `layout`.
struct PagedKv {
  PageLayout layout;
  float* base = nullptr;
  int32_t blocks = 0;
};

// One request's view of the pool: its block table (device slots in token
// order) and how many of its tokens the table covers.
struct BlockTableView {
  const int32_t* slots = nullptr;
  int32_t length = 0;
};

// Throws std::out_of_range unless the table covers `tokens` tokens with
// slots inside the pool.
void checkBlockTable(const PagedKv& kv, const BlockTableView& table, int64_t tokens, const char* op);

}  // namespace cachesage::engine
