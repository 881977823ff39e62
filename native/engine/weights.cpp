#include "weights.h"

#include <cmath>
#include <stdexcept>

namespace cachesage::engine {

namespace {

// splitmix64: a seeded stream with no global state.
struct Stream {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0); }
};

std::vector<float> uniformMatrix(Stream& stream, int64_t rows, int64_t columns, float scale) {
  std::vector<float> m(static_cast<size_t>(rows * columns));
  for (auto& x : m) x = stream.uniform() * scale;
  return m;
}

std::vector<float> normWeight(Stream& stream, int64_t dim) {
  std::vector<float> w(static_cast<size_t>(dim));
  for (auto& x : w) x = 1.0f + 0.1f * stream.uniform();
  return w;
}

void checkSize(const std::vector<float>& tensor, int64_t expected, const std::string& name) {
  if (static_cast<int64_t>(tensor.size()) != expected) {
    throw std::invalid_argument("weights: " + name + " has " + std::to_string(tensor.size()) +
                                " values, the model config needs " + std::to_string(expected));
  }
}

}  // namespace

Weights randomWeights(const ModelConfig& c, uint64_t seed) {
  validateConfig(c);
  Stream stream{seed};
  const int64_t d = c.modelDim, kv = c.kvDim(), f = c.ffnDim;
  // Uniform in [-a, a) has variance a^2 / 3: a = sqrt(3 / fan-in) keeps unit scale.
  const float inScale = std::sqrt(3.0f / static_cast<float>(d));
  const float ffnScale = std::sqrt(3.0f / static_cast<float>(f));
  Weights w;
  w.embedding = uniformMatrix(stream, c.vocab, d, 1.0f);
  for (int32_t l = 0; l < c.layers; l++) {
    LayerWeights layer;
    layer.attentionNorm = normWeight(stream, d);
    layer.wq = uniformMatrix(stream, d, d, inScale);
    layer.wk = uniformMatrix(stream, kv, d, inScale);
    layer.wv = uniformMatrix(stream, kv, d, inScale);
    layer.wo = uniformMatrix(stream, d, d, inScale);
    layer.mlpNorm = normWeight(stream, d);
    layer.wGate = uniformMatrix(stream, f, d, inScale);
    layer.wUp = uniformMatrix(stream, f, d, inScale);
    layer.wDown = uniformMatrix(stream, d, f, ffnScale);
    w.layers.push_back(std::move(layer));
  }
  w.finalNorm = normWeight(stream, d);
  if (!c.tiedEmbeddings) w.outputHead = uniformMatrix(stream, c.vocab, d, inScale);
  return w;
}

void checkWeights(const ModelConfig& c, const Weights& w) {
  validateConfig(c);
  const int64_t d = c.modelDim, kv = c.kvDim(), f = c.ffnDim;
  checkSize(w.embedding, c.vocab * d, "embedding");
  if (static_cast<int32_t>(w.layers.size()) != c.layers) {
    throw std::invalid_argument("weights: " + std::to_string(w.layers.size()) + " layers, the model config needs " +
                                std::to_string(c.layers));
  }
  for (size_t l = 0; l < w.layers.size(); l++) {
    const LayerWeights& layer = w.layers[l];
    std::string prefix = "layer " + std::to_string(l) + " ";
    checkSize(layer.attentionNorm, d, prefix + "attention norm");
    checkSize(layer.wq, d * d, prefix + "q projection");
    checkSize(layer.wk, kv * d, prefix + "k projection");
    checkSize(layer.wv, kv * d, prefix + "v projection");
    checkSize(layer.wo, d * d, prefix + "o projection");
    checkSize(layer.mlpNorm, d, prefix + "mlp norm");
    checkSize(layer.wGate, f * d, prefix + "gate projection");
    checkSize(layer.wUp, f * d, prefix + "up projection");
    checkSize(layer.wDown, d * f, prefix + "down projection");
  }
  checkSize(w.finalNorm, d, "final norm");
  if (c.tiedEmbeddings != w.outputHead.empty()) {
    throw std::invalid_argument(c.tiedEmbeddings ? "weights: an output head was given but the config ties the embeddings"
                                                 : "weights: the output head is missing");
  }
  if (!c.tiedEmbeddings) checkSize(w.outputHead, c.vocab * d, "output head");
}

}  // namespace cachesage::engine
