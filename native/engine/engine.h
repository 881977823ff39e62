// The reference engine: a Llama-architecture decoder (token embedding,
// RMSNorm, RoPE, grouped-query attention, SwiGLU MLP, tied or separate
// output head) in f32 whose KV cache lives in a pool of paged blocks it does
// not own: the device pool of the data plane, so the copy plans that move
// blocks between tiers move this KV.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model_config.h"
#include "thread_pool.h"
#include "weights.h"

namespace cachesage::engine {

// One sequence's share of a forward step: `count` new tokens at positions
// [start, start + count). Positions below `writeFrom` already have their
// K/V in the blocks (a prompt whose every block was cached recomputes its
// last token for the logits but must not rewrite shared blocks);
// writeFrom <= start means every new token's K/V is written.
struct SequenceChunk {
  const int32_t* tokens = nullptr;
  int32_t count = 0;
  int32_t start = 0;
  int32_t writeFrom = 0;
  BlockTableView table;
};

class Engine {
 public:
  // `pool` is `poolBytes` of f32 blocks of pageLayout(config, blockSize);
  // the caller keeps it alive and does not run copies into the blocks of a
  // sequence while forward() reads them.
  Engine(const ModelConfig& config, Weights weights, int32_t blockSize, void* pool, int64_t poolBytes,
         int32_t threads);

  const ModelConfig& config() const { return config_; }
  const PagedKv& kv() const { return kv_; }
  int32_t threads() const { return pool_.size(); }

  // Runs every layer over the batch: writes the new tokens' K/V into their
  // blocks and the logits ([rows][vocab]) of each chunk's last token, or of
  // every token of every chunk in order when allLogits. Checks everything
  // first (std::out_of_range naming the chunk) and then writes nothing on error.
  void forward(const std::vector<SequenceChunk>& batch, bool allLogits, float* logits);

  // The decode attention kernel alone on layer `layer`: one query per
  // sequence ([batch][heads][headDim], already rotated) against the K/V in
  // its blocks up to and including `positions[s]`; writes [batch][heads][headDim].
  void decodeAttention(int32_t layer, const std::vector<BlockTableView>& tables, const int32_t* positions,
                       const float* q, float* out);

  // How many logit rows forward() writes for this batch.
  static int64_t logitRows(const std::vector<SequenceChunk>& batch, bool allLogits);

 private:
  void check(const std::vector<SequenceChunk>& batch) const;

  ModelConfig config_;
  Weights weights_;
  PagedKv kv_;
  ThreadPool pool_;
};

// The oracle: the same decoder over one sequence with a dense, unpaged KV,
// in plain loops with double accumulation. Returns [count][vocab] logits.
std::vector<float> referenceForward(const ModelConfig& config, const Weights& weights, const int32_t* tokens,
                                    int32_t count);

}  // namespace cachesage::engine
