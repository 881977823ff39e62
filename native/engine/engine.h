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

class Engine;

// One forward step over a batch, layer by layer: the engine's own forward()
// drives it, and so can a caller whose attention runs elsewhere (a WebGPU
// device): for each layer, project() computes the rotated queries and the
// new K/V rows, the caller appends and attends over the paged KV and fills
// attention(), and finishLayer() applies the output projection and the MLP;
// logits() ends the pass. The pass owns copies of the batch's tokens and
// block tables. Rows are the batch's tokens in chunk order.
class ForwardPass {
 public:
  // Checks the batch against the engine (std::out_of_range naming the
  // chunk) and embeds its tokens.
  ForwardPass(Engine& engine, const std::vector<SequenceChunk>& batch, bool allLogits);

  int64_t rows() const { return rows_; }
  const std::vector<SequenceChunk>& chunks() const { return chunks_; }
  int64_t firstRow(size_t chunk) const { return firstRow_[chunk]; }
  // Rows of chunk s whose K/V are written: from row firstRow(s) + skip(s).
  int32_t skip(size_t chunk) const;
  // The single-token chunks, which go through the batched decode kernel.
  const std::vector<size_t>& decodes() const { return decodes_; }
  const std::vector<BlockTableView>& decodeTables() const { return decodeTables_; }
  const std::vector<int32_t>& decodePositions() const { return decodePositions_; }

  // The layer project() computes next (layers() once every layer is done),
  // and whether its queries are ready for attention.
  int32_t layer() const { return layer_; }
  bool projected() const { return projected_; }

  // [rows][heads][headDim] rotated queries, [rows][kvHeads][headDim] new
  // K and V rows, valid after project(); attention() is where the layer's
  // attention output goes, [rows][heads][headDim], read by finishLayer().
  const float* q() const { return q_.data(); }
  const float* k() const { return k_.data(); }
  const float* v() const { return v_.data(); }
  float* attention() { return attention_.data(); }

  // The decode rows' queries, gathered ([decodes][heads][headDim]), and
  // the scatter of their outputs into attention().
  void gatherDecodeQueries(float* out) const;
  void scatterDecodeOutputs(const float* outputs);

  // std::logic_error when called out of order.
  void project();
  void finishLayer();
  int64_t logitRows() const;
  // [logitRows()][vocab]: the last token of each chunk, or every row.
  void logits(float* out);

 private:
  Engine& engine_;
  bool allLogits_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> tables_;
  std::vector<SequenceChunk> chunks_;
  std::vector<int64_t> firstRow_;
  std::vector<int32_t> positions_;
  std::vector<size_t> decodes_;
  std::vector<BlockTableView> decodeTables_;
  std::vector<int32_t> decodePositions_;
  int64_t rows_ = 0;
  int32_t layer_ = 0;
  bool projected_ = false;
  bool finished_ = false;
  std::vector<float> x_, h_, q_, k_, v_, attention_, projectedRows_, gate_, up_;
};

// Where a layer's attention runs: the KV appends and the prefill and
// decode attention of a whole batch, over the pool. CpuAttention (the
// kernels of attention.h) unless the engine is given another; the CUDA
// build supplies one whose pool is in device memory (cuda_backend.h).
class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;
  virtual const char* name() const = 0;
  // Appends the layer's new K/V rows of every chunk (from its skip()) and
  // writes the pass's attention() for every row.
  virtual void attend(const PagedKv& kv, int32_t heads, int32_t layer, ForwardPass& pass, ThreadPool& threads) = 0;
  // The decode kernel alone: see Engine::decodeAttention.
  virtual void decode(const PagedKv& kv, int32_t layer, int32_t heads, int32_t batch, const BlockTableView* tables,
                      const int32_t* positions, const float* q, float* out, ThreadPool& threads) = 0;
};

class CpuAttention final : public AttentionBackend {
 public:
  const char* name() const override { return "cpu"; }
  void attend(const PagedKv& kv, int32_t heads, int32_t layer, ForwardPass& pass, ThreadPool& threads) override;
  void decode(const PagedKv& kv, int32_t layer, int32_t heads, int32_t batch, const BlockTableView* tables,
              const int32_t* positions, const float* q, float* out, ThreadPool& threads) override;
};

class Engine {
 public:
  // `pool` is `poolBytes` of f32 blocks of pageLayout(config, blockSize);
  // the caller keeps it alive and does not run copies into the blocks of a
  // sequence while forward() reads them. `attention` says where the pool
  // is and which kernels attend over it (null: CpuAttention, a host pool).
  Engine(const ModelConfig& config, Weights weights, int32_t blockSize, void* pool, int64_t poolBytes,
         int32_t threads, std::unique_ptr<AttentionBackend> attention = nullptr);
  // An engine over `blocks` blocks this process cannot address (a WebGPU
  // buffer): block tables are checked against them, forward() and
  // decodeAttention() refuse (std::logic_error), and each ForwardPass's
  // caller attends where the pool lives.
  Engine(const ModelConfig& config, Weights weights, int32_t blockSize, int32_t blocks, int32_t threads);

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const PagedKv& kv() const { return kv_; }
  int32_t threads() const { return pool_.size(); }
  ThreadPool& threadPool() { return pool_; }
  AttentionBackend& attention() { return *attention_; }

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

  // std::out_of_range naming the first bad chunk.
  void check(const std::vector<SequenceChunk>& batch) const;

 private:
  ModelConfig config_;
  Weights weights_;
  PagedKv kv_;
  ThreadPool pool_;
  std::unique_ptr<AttentionBackend> attention_;
};

// The oracle: the same decoder over one sequence with a dense, unpaged KV,
// in plain loops with double accumulation. Returns [count][vocab] logits.
std::vector<float> referenceForward(const ModelConfig& config, const Weights& weights, const int32_t* tokens,
                                    int32_t count);

}  // namespace cachesage::engine
