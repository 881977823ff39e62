// A decoder's weights as f32, in Hugging Face Llama's [out][in] layout:
// seeded random, or read from a safetensors file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model_config.h"

namespace cachesage::engine {

struct LayerWeights {
  std::vector<float> attentionNorm;  // [modelDim]
  std::vector<float> wq;             // [heads * headDim][modelDim]
  std::vector<float> wk;             // [kvHeads * headDim][modelDim]
  std::vector<float> wv;             // [kvHeads * headDim][modelDim]
  std::vector<float> wo;             // [modelDim][heads * headDim]
  std::vector<float> mlpNorm;        // [modelDim]
  std::vector<float> wGate;          // [ffnDim][modelDim]
  std::vector<float> wUp;            // [ffnDim][modelDim]
  std::vector<float> wDown;          // [modelDim][ffnDim]
};

struct Weights {
  std::vector<float> embedding;  // [vocab][modelDim]
  std::vector<LayerWeights> layers;
  std::vector<float> finalNorm;  // [modelDim]
  std::vector<float> outputHead;  // [vocab][modelDim]; empty when tied to the embedding

  const std::vector<float>& head() const { return outputHead.empty() ? embedding : outputHead; }
};

// Deterministic for a seed: uniform weights scaled by 1/sqrt(fan-in), norm
// weights near 1. The output head is separate unless config.tiedEmbeddings.
Weights randomWeights(const ModelConfig& config, uint64_t seed);

// Reads every tensor the config needs (Hugging Face Llama names) from a
// safetensors file, converting F32, F16 and BF16 to f32. Throws
// std::invalid_argument naming the file and, where one is at fault, the
// tensor: unreadable or truncated file, malformed header, missing tensor,
// unsupported dtype, wrong shape. lm_head.weight is read unless the config
// ties the embeddings.
Weights loadSafetensors(const ModelConfig& config, const std::string& path);

// Throws std::invalid_argument unless every tensor has its config's size.
void checkWeights(const ModelConfig& config, const Weights& weights);

}  // namespace cachesage::engine
