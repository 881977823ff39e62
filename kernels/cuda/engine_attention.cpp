// CudaEngineAttention (cuda_backend.h): the engine's per-layer attention on
// the device. Plain C++ over the CUDA wrappers; no CUDA type appears here.
#include <algorithm>
#include <cstddef>
#include <vector>

#include "cuda_backend.h"

namespace cachesage {

namespace {

// A device buffer that grows (never shrinks) to the largest request.
class Scratch {
 public:
  float* reserve(size_t floats) {
    if (buffer_.bytes() < floats * sizeof(float)) buffer_ = CudaDeviceBuffer(std::max<size_t>(floats, 1) * sizeof(float));
    return buffer_.as<float>();
  }
  // Reserves `floats` and copies them up from the host (synchronously).
  float* upload(const float* source, size_t floats) {
    float* device = reserve(floats);
    if (floats > 0) buffer_.upload(source, floats * sizeof(float));
    return device;
  }
  void download(float* destination, size_t floats) const {
    if (floats > 0) buffer_.download(destination, floats * sizeof(float));
  }

 private:
  CudaDeviceBuffer buffer_;
};

}  // namespace

struct CudaEngineAttention::Impl {
  CudaPagedAttention kernels;
  Scratch q, k, v, out, decodeQ, decodeOut;
  std::vector<float> hostQueries, hostOutputs;

  // One decode batch: queries up, the kernel, outputs down.
  void decode(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
              const engine::BlockTableView* tables, const int32_t* positions, const float* queries, float* outputs) {
    const size_t floats = static_cast<size_t>(batch) * static_cast<size_t>(heads) * static_cast<size_t>(kv.layout.headDim);
    // The upload is synchronous and to a buffer no queued kernel reads.
    const float* deviceQ = decodeQ.upload(queries, floats);
    float* deviceOut = decodeOut.reserve(floats);
    kernels.decode(kv, layer, heads, batch, tables, positions, deviceQ, deviceOut);
    kernels.synchronize();
    decodeOut.download(outputs, floats);
  }
};

CudaEngineAttention::CudaEngineAttention() : impl_(std::make_unique<Impl>()) {}
CudaEngineAttention::~CudaEngineAttention() = default;

void CudaEngineAttention::attend(const engine::PagedKv& kv, int32_t heads, int32_t layer, engine::ForwardPass& pass,
                                 engine::ThreadPool&) {
  Impl& m = *impl_;
  const size_t rows = static_cast<size_t>(pass.rows());
  const size_t d = static_cast<size_t>(heads) * static_cast<size_t>(kv.layout.headDim);
  const size_t kvDim = static_cast<size_t>(kv.layout.kvHeads) * static_cast<size_t>(kv.layout.headDim);
  const float* q = m.q.upload(pass.q(), rows * d);
  const float* k = m.k.upload(pass.k(), rows * kvDim);
  const float* v = m.v.upload(pass.v(), rows * kvDim);
  float* out = m.out.reserve(rows * d);
  const auto& chunks = pass.chunks();
  for (size_t s = 0; s < chunks.size(); s++) {
    const engine::SequenceChunk& chunk = chunks[s];
    const int32_t skip = pass.skip(s);
    const size_t row = static_cast<size_t>(pass.firstRow(s) + skip);
    m.kernels.appendKv(kv, layer, chunk.table, chunk.start + skip, chunk.count - skip, k + row * kvDim,
                       v + row * kvDim);
  }
  bool prefills = false;
  for (size_t s = 0; s < chunks.size(); s++) {
    const engine::SequenceChunk& chunk = chunks[s];
    if (chunk.count == 1) continue;
    const size_t offset = static_cast<size_t>(pass.firstRow(s)) * d;
    m.kernels.prefill(kv, layer, heads, chunk.table, chunk.start, chunk.count, q + offset, out + offset);
    prefills = true;
  }
  m.kernels.synchronize();
  // Decode rows are overwritten by their scatter below.
  if (prefills) m.out.download(pass.attention(), rows * d);
  const size_t decodes = pass.decodes().size();
  if (decodes == 0) return;
  m.hostQueries.resize(decodes * d);
  m.hostOutputs.resize(decodes * d);
  pass.gatherDecodeQueries(m.hostQueries.data());
  m.decode(kv, layer, heads, static_cast<int32_t>(decodes), pass.decodeTables().data(), pass.decodePositions().data(),
           m.hostQueries.data(), m.hostOutputs.data());
  pass.scatterDecodeOutputs(m.hostOutputs.data());
}

void CudaEngineAttention::decode(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
                                 const engine::BlockTableView* tables, const int32_t* positions, const float* q,
                                 float* out, engine::ThreadPool&) {
  impl_->decode(kv, layer, heads, batch, tables, positions, q, out);
}

}  // namespace cachesage
