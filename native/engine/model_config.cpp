#include "model_config.h"

#include <stdexcept>
#include <string>

namespace cachesage::engine {

namespace {

void checkField(int64_t value, int64_t min, int64_t max, const char* name) {
  if (value < min || value > max) {
    throw std::out_of_range(std::string("model config: ") + name + " must be in [" + std::to_string(min) +
                            ", " + std::to_string(max) + "], got " + std::to_string(value));
  }
}

}  // namespace

void validateConfig(const ModelConfig& c) {
  checkField(c.layers, 1, 4096, "layers");
  checkField(c.modelDim, 1, 1 << 16, "modelDim");
  checkField(c.heads, 1, c.modelDim, "heads");
  checkField(c.kvHeads, 1, c.heads, "kvHeads");
  checkField(c.ffnDim, 1, 1 << 18, "ffnDim");
  checkField(c.vocab, 1, 1 << 22, "vocab");
  if (c.modelDim % c.heads != 0) throw std::out_of_range("model config: modelDim must be a multiple of heads");
  if (c.headDim() % 2 != 0) throw std::out_of_range("model config: the head dimension (modelDim / heads) must be even for RoPE");
  if (c.heads % c.kvHeads != 0) throw std::out_of_range("model config: heads must be a multiple of kvHeads");
  if (!(c.ropeTheta > 1.0f)) throw std::out_of_range("model config: ropeTheta must be above 1");
  if (!(c.normEps > 0.0f)) throw std::out_of_range("model config: normEps must be positive");
}

PageLayout pageLayout(const ModelConfig& config, int32_t blockSize) {
  checkField(blockSize, 1, 1 << 16, "blockSize");
  PageLayout layout;
  layout.layers = config.layers;
  layout.kvHeads = config.kvHeads;
  layout.blockSize = blockSize;
  layout.headDim = config.headDim();
  return layout;
}

void checkBlockTable(const PagedKv& kv, const BlockTableView& table, int64_t tokens, const char* op) {
  int64_t needed = (tokens + kv.layout.blockSize - 1) / kv.layout.blockSize;
  if (table.length < needed) {
    throw std::out_of_range(std::string(op) + ": the block table has " + std::to_string(table.length) +
                            " blocks, " + std::to_string(tokens) + " tokens need " + std::to_string(needed));
  }
  for (int64_t i = 0; i < needed; i++) {
    int32_t slot = table.slots[i];
    if (slot < 0 || slot >= kv.blocks) {
      throw std::out_of_range(std::string(op) + ": block table entry " + std::to_string(i) + " is slot " +
                              std::to_string(slot) + ", outside the pool of " + std::to_string(kv.blocks) +
                              " blocks");
    }
  }
}

}  // namespace cachesage::engine
