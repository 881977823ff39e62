#include "engine.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "attention.h"
#include "dense.h"

namespace cachesage::engine {

Engine::Engine(const ModelConfig& config, Weights weights, int32_t blockSize, void* pool, int64_t poolBytes,
               int32_t threads)
    : config_(config), weights_(std::move(weights)), pool_(threads) {
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
}

int64_t Engine::logitRows(const std::vector<SequenceChunk>& batch, bool allLogits) {
  if (!allLogits) return static_cast<int64_t>(batch.size());
  int64_t rows = 0;
  for (const auto& chunk : batch) rows += chunk.count;
  return rows;
}

void Engine::check(const std::vector<SequenceChunk>& batch) const {
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
  check(batch);
  const ModelConfig& c = config_;
  const int64_t d = c.modelDim, kvDim = c.kvDim(), f = c.ffnDim;
  int64_t total = 0;
  for (const auto& chunk : batch) total += chunk.count;
  std::vector<int32_t> positions(static_cast<size_t>(total));
  std::vector<int64_t> firstRow(batch.size());
  std::vector<float> x(static_cast<size_t>(total * d));
  {
    int64_t row = 0;
    for (size_t s = 0; s < batch.size(); s++) {
      firstRow[s] = row;
      for (int32_t i = 0; i < batch[s].count; i++, row++) {
        positions[static_cast<size_t>(row)] = batch[s].start + i;
        std::memcpy(&x[static_cast<size_t>(row * d)], &weights_.embedding[static_cast<size_t>(batch[s].tokens[i] * d)],
                    sizeof(float) * static_cast<size_t>(d));
      }
    }
  }
  // Single-token chunks go through the batched decode kernel.
  std::vector<size_t> decodes;
  std::vector<BlockTableView> decodeTables;
  std::vector<int32_t> decodePositions;
  for (size_t s = 0; s < batch.size(); s++) {
    if (batch[s].count == 1) {
      decodes.push_back(s);
      decodeTables.push_back(batch[s].table);
      decodePositions.push_back(batch[s].start);
    }
  }
  std::vector<float> h(x.size()), q(x.size()), attention(x.size()), projected(x.size());
  std::vector<float> k(static_cast<size_t>(total * kvDim)), v(k.size());
  std::vector<float> gate(static_cast<size_t>(total * f)), up(gate.size());
  std::vector<float> decodeQ(decodes.size() * static_cast<size_t>(d)), decodeOut(decodeQ.size());
  for (int32_t l = 0; l < c.layers; l++) {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    rmsNorm(x.data(), w.attentionNorm.data(), h.data(), total, d, c.normEps);
    matmulTransposed(h.data(), w.wq.data(), q.data(), total, d, d, pool_);
    matmulTransposed(h.data(), w.wk.data(), k.data(), total, d, kvDim, pool_);
    matmulTransposed(h.data(), w.wv.data(), v.data(), total, d, kvDim, pool_);
    applyRope(q.data(), total, c.heads, c.headDim(), positions.data(), c.ropeTheta);
    applyRope(k.data(), total, c.kvHeads, c.headDim(), positions.data(), c.ropeTheta);
    for (size_t s = 0; s < batch.size(); s++) {
      const SequenceChunk& chunk = batch[s];
      int32_t skip = std::clamp(chunk.writeFrom - chunk.start, 0, chunk.count);
      int64_t row = firstRow[s] + skip;
      appendKv(kv_, l, chunk.table, chunk.start + skip, chunk.count - skip, &k[static_cast<size_t>(row * kvDim)],
               &v[static_cast<size_t>(row * kvDim)]);
    }
    for (size_t s = 0; s < batch.size(); s++) {
      const SequenceChunk& chunk = batch[s];
      if (chunk.count == 1) continue;
      size_t offset = static_cast<size_t>(firstRow[s] * d);
      pagedPrefillAttention(kv_, l, c.heads, chunk.table, chunk.start, chunk.count, &q[offset], &attention[offset],
                            pool_);
    }
    if (!decodes.empty()) {
      for (size_t i = 0; i < decodes.size(); i++) {
        std::memcpy(&decodeQ[i * static_cast<size_t>(d)], &q[static_cast<size_t>(firstRow[decodes[i]] * d)],
                    sizeof(float) * static_cast<size_t>(d));
      }
      pagedDecodeAttention(kv_, l, c.heads, static_cast<int32_t>(decodes.size()), decodeTables.data(),
                           decodePositions.data(), decodeQ.data(), decodeOut.data(), pool_);
      for (size_t i = 0; i < decodes.size(); i++) {
        std::memcpy(&attention[static_cast<size_t>(firstRow[decodes[i]] * d)], &decodeOut[i * static_cast<size_t>(d)],
                    sizeof(float) * static_cast<size_t>(d));
      }
    }
    matmulTransposed(attention.data(), w.wo.data(), projected.data(), total, d, d, pool_);
    for (size_t i = 0; i < x.size(); i++) x[i] += projected[i];
    rmsNorm(x.data(), w.mlpNorm.data(), h.data(), total, d, c.normEps);
    matmulTransposed(h.data(), w.wGate.data(), gate.data(), total, d, f, pool_);
    matmulTransposed(h.data(), w.wUp.data(), up.data(), total, d, f, pool_);
    swiglu(gate.data(), up.data(), gate.data(), total * f);
    matmulTransposed(gate.data(), w.wDown.data(), projected.data(), total, f, d, pool_);
    for (size_t i = 0; i < x.size(); i++) x[i] += projected[i];
  }
  // The output head runs only on the rows whose logits are wanted.
  int64_t rows = logitRows(batch, allLogits);
  std::vector<float> selected(static_cast<size_t>(rows * d));
  if (allLogits) {
    selected = x;
  } else {
    for (size_t s = 0; s < batch.size(); s++) {
      std::memcpy(&selected[s * static_cast<size_t>(d)], &x[static_cast<size_t>((firstRow[s] + batch[s].count - 1) * d)],
                  sizeof(float) * static_cast<size_t>(d));
    }
  }
  rmsNorm(selected.data(), weights_.finalNorm.data(), selected.data(), rows, d, c.normEps);
  matmulTransposed(selected.data(), weights_.head().data(), logits, rows, d, c.vocab, pool_);
}

void Engine::decodeAttention(int32_t layer, const std::vector<BlockTableView>& tables, const int32_t* positions,
                             const float* q, float* out) {
  if (layer < 0 || layer >= config_.layers) throw std::out_of_range("decodeAttention: layer out of range");
  pagedDecodeAttention(kv_, layer, config_.heads, static_cast<int32_t>(tables.size()), tables.data(), positions, q, out,
                       pool_);
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
