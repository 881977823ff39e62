#include "engine.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "attention.h"
#include "dense.h"

namespace cachesage::engine {

namespace {

// The attention of an engine over a pool it cannot address.
class ExternalAttention final : public AttentionBackend {
 public:
  const char* name() const override { return "external"; }
  void attend(const PagedKv&, int32_t, int32_t, ForwardPass&, ThreadPool&) override {
    throw std::logic_error(
        "forward: this engine's KV pool is not in this process's memory; attend where it lives, layer by layer "
        "(ForwardPass)");
  }
  void decode(const PagedKv&, int32_t, int32_t, int32_t, const BlockTableView*, const int32_t*, const float*, float*,
              ThreadPool&) override {
    throw std::logic_error("decodeAttention: this engine's KV pool is not in this process's memory");
  }
};

}  // namespace

Engine::Engine(const ModelConfig& config, Weights weights, int32_t blockSize, void* pool, int64_t poolBytes,
               int32_t threads, std::unique_ptr<AttentionBackend> attention)
    : config_(config), weights_(std::move(weights)), pool_(threads), attention_(std::move(attention)) {
  checkWeights(config_, weights_);
  kv_.layout = pageLayout(config_, blockSize);
  if (pool == nullptr || reinterpret_cast<uintptr_t>(pool) % alignof(float) != 0) {
    throw std::invalid_argument("Engine: the KV pool must be non-null and f32-aligned");
  }
  int64_t bytesPerBlock = kv_.layout.bytesPerBlock();
  if (poolBytes <= 0 || poolBytes % bytesPerBlock != 0 || poolBytes / bytesPerBlock > INT32_MAX) {
    throw std::out_of_range("Engine: the KV pool has " + std::to_string(poolBytes) +
                            " bytes, not a whole number of " + std::to_string(bytesPerBlock) + "-byte blocks");
  }
  kv_.base = static_cast<float*>(pool);
  kv_.blocks = static_cast<int32_t>(poolBytes / bytesPerBlock);
  if (!attention_) attention_ = std::make_unique<CpuAttention>();
}

Engine::Engine(const ModelConfig& config, Weights weights, int32_t blockSize, int32_t blocks, int32_t threads)
    : config_(config), weights_(std::move(weights)), pool_(threads), attention_(std::make_unique<ExternalAttention>()) {
  checkWeights(config_, weights_);
  kv_.layout = pageLayout(config_, blockSize);
  if (blocks < 1) throw std::out_of_range("Engine: the KV pool must have at least one block");
  kv_.blocks = blocks;
}

int64_t Engine::logitRows(const std::vector<SequenceChunk>& batch, bool allLogits) {
  if (!allLogits) return static_cast<int64_t>(batch.size());
  int64_t rows = 0;
  for (const auto& chunk : batch) rows += chunk.count;
  return rows;
}

void Engine::check(const std::vector<SequenceChunk>& batch) const {
  if (batch.empty()) throw std::out_of_range("forward: the batch has no chunks");
  for (size_t s = 0; s < batch.size(); s++) {
    const SequenceChunk& chunk = batch[s];
    std::string op = "forward: chunk " + std::to_string(s);
    if (chunk.count < 1) throw std::out_of_range(op + " has no tokens");
    if (chunk.start < 0 || chunk.writeFrom < 0 || static_cast<int64_t>(chunk.start) + chunk.count > INT32_MAX) {
      throw std::out_of_range(op + ": start and writeFrom must be non-negative");
    }
    if (chunk.writeFrom > chunk.start + chunk.count) {
      throw std::out_of_range(op + ": writeFrom is past the chunk's last position");
    }
    for (int32_t i = 0; i < chunk.count; i++) {
      if (chunk.tokens[i] < 0 || chunk.tokens[i] >= config_.vocab) {
        throw std::out_of_range(op + ": token " + std::to_string(i) + " is " + std::to_string(chunk.tokens[i]) +
                                ", outside the vocabulary of " + std::to_string(config_.vocab));
      }
    }
    checkBlockTable(kv_, chunk.table, static_cast<int64_t>(chunk.start) + chunk.count, op.c_str());
  }
}

void Engine::forward(const std::vector<SequenceChunk>& batch, bool allLogits, float* logits) {
  ForwardPass pass(*this, batch, allLogits);
  for (int32_t l = 0; l < config_.layers; l++) {
    pass.project();
    attention_->attend(kv_, config_.heads, l, pass, pool_);
    pass.finishLayer();
  }
  pass.logits(logits);
}

void Engine::decodeAttention(int32_t layer, const std::vector<BlockTableView>& tables, const int32_t* positions,
                             const float* q, float* out) {
  if (layer < 0 || layer >= config_.layers) throw std::out_of_range("decodeAttention: layer out of range");
  attention_->decode(kv_, layer, config_.heads, static_cast<int32_t>(tables.size()), tables.data(), positions, q, out,
                     pool_);
}

ForwardPass::ForwardPass(Engine& engine, const std::vector<SequenceChunk>& batch, bool allLogits)
    : engine_(engine), allLogits_(allLogits) {
  engine.check(batch);
  const ModelConfig& c = engine.config();
  const int64_t d = c.modelDim;
  size_t tableTotal = 0;
  for (const auto& chunk : batch) {
    rows_ += chunk.count;
    tableTotal += static_cast<size_t>(chunk.table.length);
  }
  tokens_.reserve(static_cast<size_t>(rows_));
  tables_.reserve(tableTotal);
  chunks_.reserve(batch.size());
  for (const auto& chunk : batch) {
    SequenceChunk copy = chunk;
    copy.tokens = tokens_.data() + tokens_.size();
    copy.table.slots = tables_.data() + tables_.size();
    tokens_.insert(tokens_.end(), chunk.tokens, chunk.tokens + chunk.count);
    tables_.insert(tables_.end(), chunk.table.slots, chunk.table.slots + chunk.table.length);
    chunks_.push_back(copy);
  }
  positions_.resize(static_cast<size_t>(rows_));
  firstRow_.resize(chunks_.size());
  x_.resize(static_cast<size_t>(rows_ * d));
  int64_t row = 0;
  for (size_t s = 0; s < chunks_.size(); s++) {
    const SequenceChunk& chunk = chunks_[s];
    firstRow_[s] = row;
    for (int32_t i = 0; i < chunk.count; i++, row++) {
      positions_[static_cast<size_t>(row)] = chunk.start + i;
      std::memcpy(&x_[static_cast<size_t>(row * d)],
                  &engine.weights().embedding[static_cast<size_t>(chunk.tokens[i]) * static_cast<size_t>(d)],
                  sizeof(float) * static_cast<size_t>(d));
    }
    if (chunk.count == 1) {
      decodes_.push_back(s);
      decodeTables_.push_back(chunk.table);
      decodePositions_.push_back(chunk.start);
    }
  }
  const int64_t kvDim = c.kvDim(), f = c.ffnDim;
  h_.resize(x_.size());
  q_.resize(x_.size());
  attention_.resize(x_.size());
  projectedRows_.resize(x_.size());
  k_.resize(static_cast<size_t>(rows_ * kvDim));
  v_.resize(k_.size());
  gate_.resize(static_cast<size_t>(rows_ * f));
  up_.resize(gate_.size());
}

int32_t ForwardPass::skip(size_t chunk) const {
  const SequenceChunk& c = chunks_[chunk];
  return std::clamp(c.writeFrom - c.start, 0, c.count);
}

void ForwardPass::gatherDecodeQueries(float* out) const {
  const size_t d = static_cast<size_t>(engine_.config().modelDim);
  for (size_t i = 0; i < decodes_.size(); i++) {
    std::memcpy(out + i * d, &q_[static_cast<size_t>(firstRow_[decodes_[i]]) * d], sizeof(float) * d);
  }
}

void ForwardPass::scatterDecodeOutputs(const float* outputs) {
  const size_t d = static_cast<size_t>(engine_.config().modelDim);
  for (size_t i = 0; i < decodes_.size(); i++) {
    std::memcpy(&attention_[static_cast<size_t>(firstRow_[decodes_[i]]) * d], outputs + i * d, sizeof(float) * d);
  }
}

void ForwardPass::project() {
  const ModelConfig& c = engine_.config();
  if (finished_ || projected_ || layer_ >= c.layers) throw std::logic_error("project: every layer of this pass is already projected");
  const LayerWeights& w = engine_.weights().layers[static_cast<size_t>(layer_)];
  ThreadPool& threads = engine_.threadPool();
  const int64_t d = c.modelDim, kvDim = c.kvDim();
  rmsNorm(x_.data(), w.attentionNorm.data(), h_.data(), rows_, d, c.normEps);
  matmulTransposed(h_.data(), w.wq.data(), q_.data(), rows_, d, d, threads);
  matmulTransposed(h_.data(), w.wk.data(), k_.data(), rows_, d, kvDim, threads);
  matmulTransposed(h_.data(), w.wv.data(), v_.data(), rows_, d, kvDim, threads);
  applyRope(q_.data(), rows_, c.heads, c.headDim(), positions_.data(), c.ropeTheta);
  applyRope(k_.data(), rows_, c.kvHeads, c.headDim(), positions_.data(), c.ropeTheta);
  projected_ = true;
}

void ForwardPass::finishLayer() {
  if (!projected_) throw std::logic_error("finishLayer: the layer is not projected yet (call project first)");
  const ModelConfig& c = engine_.config();
  const LayerWeights& w = engine_.weights().layers[static_cast<size_t>(layer_)];
  ThreadPool& threads = engine_.threadPool();
  const int64_t d = c.modelDim, f = c.ffnDim;
  matmulTransposed(attention_.data(), w.wo.data(), projectedRows_.data(), rows_, d, d, threads);
  for (size_t i = 0; i < x_.size(); i++) x_[i] += projectedRows_[i];
  rmsNorm(x_.data(), w.mlpNorm.data(), h_.data(), rows_, d, c.normEps);
  matmulTransposed(h_.data(), w.wGate.data(), gate_.data(), rows_, d, f, threads);
  matmulTransposed(h_.data(), w.wUp.data(), up_.data(), rows_, d, f, threads);
  swiglu(gate_.data(), up_.data(), gate_.data(), rows_ * f);
  matmulTransposed(gate_.data(), w.wDown.data(), projectedRows_.data(), rows_, f, d, threads);
  for (size_t i = 0; i < x_.size(); i++) x_[i] += projectedRows_[i];
  projected_ = false;
  layer_++;
}

int64_t ForwardPass::logitRows() const { return allLogits_ ? rows_ : static_cast<int64_t>(chunks_.size()); }

void ForwardPass::logits(float* out) {
  const ModelConfig& c = engine_.config();
  if (finished_) throw std::logic_error("logits: this pass has ended");
  if (layer_ < c.layers) {
    throw std::logic_error("logits: layer " + std::to_string(layer_) + " of " + std::to_string(c.layers) +
                           " has not run yet");
  }
  const int64_t d = c.modelDim;
  // The output head runs only on the rows whose logits are wanted.
  const int64_t rows = logitRows();
  std::vector<float> selected(static_cast<size_t>(rows * d));
  if (allLogits_) {
    selected = x_;
  } else {
    for (size_t s = 0; s < chunks_.size(); s++) {
      std::memcpy(&selected[s * static_cast<size_t>(d)],
                  &x_[static_cast<size_t>((firstRow_[s] + chunks_[s].count - 1) * d)], sizeof(float) * static_cast<size_t>(d));
    }
  }
  rmsNorm(selected.data(), engine_.weights().finalNorm.data(), selected.data(), rows, d, c.normEps);
  matmulTransposed(selected.data(), engine_.weights().head().data(), out, rows, d, c.vocab, engine_.threadPool());
  finished_ = true;
}

void CpuAttention::attend(const PagedKv& kv, int32_t heads, int32_t layer, ForwardPass& pass, ThreadPool& threads) {
  const int64_t d = static_cast<int64_t>(heads) * kv.layout.headDim;
  const int64_t kvDim = static_cast<int64_t>(kv.layout.kvHeads) * kv.layout.headDim;
  const auto& chunks = pass.chunks();
  for (size_t s = 0; s < chunks.size(); s++) {
    const SequenceChunk& chunk = chunks[s];
    const int32_t skip = pass.skip(s);
    const size_t row = static_cast<size_t>(pass.firstRow(s) + skip);
    appendKv(kv, layer, chunk.table, chunk.start + skip, chunk.count - skip, pass.k() + row * kvDim,
             pass.v() + row * kvDim);
  }
  for (size_t s = 0; s < chunks.size(); s++) {
    const SequenceChunk& chunk = chunks[s];
    if (chunk.count == 1) continue;
    const size_t offset = static_cast<size_t>(pass.firstRow(s) * d);
    pagedPrefillAttention(kv, layer, heads, chunk.table, chunk.start, chunk.count, pass.q() + offset,
                          pass.attention() + offset, threads);
  }
  const size_t decodes = pass.decodes().size();
  if (decodes == 0) return;
  std::vector<float> queries(decodes * static_cast<size_t>(d)), outputs(queries.size());
  pass.gatherDecodeQueries(queries.data());
  pagedDecodeAttention(kv, layer, heads, static_cast<int32_t>(decodes), pass.decodeTables().data(),
                       pass.decodePositions().data(), queries.data(), outputs.data(), threads);
  pass.scatterDecodeOutputs(outputs.data());
}

void CpuAttention::decode(const PagedKv& kv, int32_t layer, int32_t heads, int32_t batch, const BlockTableView* tables,
                          const int32_t* positions, const float* q, float* out, ThreadPool& threads) {
  pagedDecodeAttention(kv, layer, heads, batch, tables, positions, q, out, threads);
}

std::vector<float> referenceForward(const ModelConfig& c, const Weights& w, const int32_t* tokens, int32_t count) {
  checkWeights(c, w);
  const int64_t d = c.modelDim, kvDim = c.kvDim(), f = c.ffnDim, n = count;
  std::vector<int32_t> positions(static_cast<size_t>(n));
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; i++) {
    positions[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    std::memcpy(&x[static_cast<size_t>(i * d)], &w.embedding[static_cast<size_t>(tokens[i] * d)], sizeof(float) * static_cast<size_t>(d));
  }
  std::vector<float> h(x.size()), q(x.size()), attention(x.size()), projected(x.size());
  std::vector<float> k(static_cast<size_t>(n * kvDim)), v(k.size()), gate(static_cast<size_t>(n * f)), up(gate.size());
  for (const LayerWeights& layer : w.layers) {
    rmsNorm(x.data(), layer.attentionNorm.data(), h.data(), n, d, c.normEps);
    referenceMatmulTransposed(h.data(), layer.wq.data(), q.data(), n, d, d);
    referenceMatmulTransposed(h.data(), layer.wk.data(), k.data(), n, d, kvDim);
    referenceMatmulTransposed(h.data(), layer.wv.data(), v.data(), n, d, kvDim);
    applyRope(q.data(), n, c.heads, c.headDim(), positions.data(), c.ropeTheta);
    applyRope(k.data(), n, c.kvHeads, c.headDim(), positions.data(), c.ropeTheta);
    referenceAttention(c.heads, c.kvHeads, c.headDim(), 0, count, q.data(), k.data(), v.data(), attention.data());
    referenceMatmulTransposed(attention.data(), layer.wo.data(), projected.data(), n, d, d);
    for (size_t i = 0; i < x.size(); i++) x[i] += projected[i];
    rmsNorm(x.data(), layer.mlpNorm.data(), h.data(), n, d, c.normEps);
    referenceMatmulTransposed(h.data(), layer.wGate.data(), gate.data(), n, d, f);
    referenceMatmulTransposed(h.data(), layer.wUp.data(), up.data(), n, d, f);
    swiglu(gate.data(), up.data(), gate.data(), n * f);
    referenceMatmulTransposed(gate.data(), layer.wDown.data(), projected.data(), n, f, d);
    for (size_t i = 0; i < x.size(); i++) x[i] += projected[i];
  }
  rmsNorm(x.data(), w.finalNorm.data(), x.data(), n, d, c.normEps);
  std::vector<float> logits(static_cast<size_t>(n * c.vocab));
  referenceMatmulTransposed(x.data(), w.head().data(), logits.data(), n, d, c.vocab);
  return logits;
}

}  // namespace cachesage::engine
