// The paged attention kernels of native/engine/attention.h on the device:
// KV append, prefill attention and decode attention over the page layout of
// native/engine/model_config.h, f32.
//
// Prefill and decode are one kernel: a thread block per (query row, query
// head) walks the row's context [0, position] in tiles of kTile positions
// with an online softmax (running maximum and sum, the accumulator rescaled
// when the maximum grows), so any context length runs in fixed shared
// memory. Prefill rows share one block table and sit at start + row; decode
// rows each have a table and a position of their own.
//
// Within a tile each warp scores positions with its lanes spread over the
// head dimension (coalesced K rows, shuffle reduction), and then each
// thread accumulates its own output dimensions over the tile's V rows
// (coalesced across threads). Query heads of one GQA group read the same
// K/V rows from separate thread blocks; the cache serves the repeats.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_check.cuh"

namespace cachesage {

namespace {

using cuda_detail::check;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = kThreads;
constexpr int kAppendThreads = 256;
constexpr int64_t kMaxAppendGroups = 65535;

// PageLayout's strides as plain values: its member functions are host code.
struct DeviceLayout {
  int64_t blockStride;
  int64_t layerStride;
  int64_t kvStride;
  int64_t headStride;
  int32_t blockSize;
  int32_t headDim;
  int32_t kvHeads;
};

DeviceLayout deviceLayout(const engine::PageLayout& layout) {
  return {layout.blockStride(), layout.layerStride(), layout.kvStride(), layout.headStride(),
          layout.blockSize,     layout.headDim,       layout.kvHeads};
}

struct AttentionArgs {
  const float* pool;
  DeviceLayout layout;
  int32_t layer;
  int32_t heads;
  int32_t group;  // query heads per KV head
  const float* q;
  float* out;
  // Block tables back to back; row r's starts at tableStarts[r], or at 0
  // for every row when tableStarts is null (prefill).
  const int32_t* slots;
  const int32_t* tableStarts;
  // Row r sits at positions[r], or at firstPosition + r when null (prefill).
  const int32_t* positions;
  int32_t firstPosition;
  float scale;
};

__global__ void __launch_bounds__(kThreads) pagedAttentionKernel(AttentionArgs a) {
  extern __shared__ float queryAndSum[];  // query[headDim], then sum[headDim]
  __shared__ float weights[kTile];
  __shared__ int64_t keyOffsets[kTile];
  const DeviceLayout& L = a.layout;
  const int32_t hd = L.headDim;
  const int32_t row = static_cast<int32_t>(blockIdx.x);
  const int32_t head = static_cast<int32_t>(blockIdx.y);
  const int32_t lane = static_cast<int32_t>(threadIdx.x) % 32;
  const int32_t warp = static_cast<int32_t>(threadIdx.x) / 32;
  const int32_t thread = static_cast<int32_t>(threadIdx.x);
  float* query = queryAndSum;
  float* sum = queryAndSum + hd;

  const int32_t position = a.positions != nullptr ? a.positions[row] : a.firstPosition + row;
  const int32_t context = position + 1;
  const int32_t* table = a.slots + (a.tableStarts != nullptr ? a.tableStarts[row] : 0);
  const int64_t rowOffset = (static_cast<int64_t>(row) * a.heads + head) * hd;
  const int64_t headBase = a.layer * L.layerStride + (head / a.group) * L.headStride;
  for (int32_t d = thread; d < hd; d += kThreads) {
    query[d] = a.q[rowOffset + d];
    sum[d] = 0.0f;
  }
  __syncthreads();

  float maximum = -INFINITY;
  float total = 0.0f;
  for (int32_t first = 0; first < context; first += kTile) {
    const int32_t n = min(kTile, context - first);
    for (int32_t j = warp; j < n; j += kWarps) {
      const int32_t p = first + j;
      const int64_t offset = table[p / L.blockSize] * L.blockStride + headBase +
                             static_cast<int64_t>(p % L.blockSize) * hd;
      const float* key = a.pool + offset;
      float partial = 0.0f;
      for (int32_t d = lane; d < hd; d += 32) partial += query[d] * key[d];
      for (int32_t step = 16; step > 0; step /= 2) partial += __shfl_xor_sync(0xffffffffu, partial, step);
      if (lane == 0) {
        weights[j] = partial * a.scale;
        keyOffsets[j] = offset;
      }
    }
    __syncthreads();
    float tileMaximum = -INFINITY;
    for (int32_t j = 0; j < n; j++) tileMaximum = fmaxf(tileMaximum, weights[j]);
    const float newMaximum = fmaxf(maximum, tileMaximum);
    // exp(-inf) = 0: the first tile starts from an empty sum.
    const float rescale = expf(maximum - newMaximum);
    __syncthreads();  // every thread has read the scores before they become weights
    if (thread < n) weights[thread] = expf(weights[thread] - newMaximum);
    __syncthreads();
    float tileTotal = 0.0f;
    for (int32_t j = 0; j < n; j++) tileTotal += weights[j];
    total = total * rescale + tileTotal;
    maximum = newMaximum;
    for (int32_t d = thread; d < hd; d += kThreads) {
      float accumulated = 0.0f;
      for (int32_t j = 0; j < n; j++) accumulated += weights[j] * a.pool[keyOffsets[j] + L.kvStride + d];
      sum[d] = sum[d] * rescale + accumulated;
    }
    __syncthreads();  // the next tile overwrites weights and offsets
  }
  const float inverse = 1.0f / total;
  for (int32_t d = thread; d < hd; d += kThreads) a.out[rowOffset + d] = sum[d] * inverse;
}

// One thread per float of the appended rows: k and v are
// [count][kvHeads][headDim], so consecutive threads write consecutive
// floats of a row.
__global__ void __launch_bounds__(kAppendThreads)
    appendKvKernel(float* pool, DeviceLayout L, int32_t layer, const int32_t* slots, int32_t start,
                   int64_t total, const float* k, const float* v) {
  const int64_t perToken = static_cast<int64_t>(L.kvHeads) * L.headDim;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t position = start + static_cast<int32_t>(i / perToken);
    const int64_t within = i % perToken;
    const int64_t offset = slots[position / L.blockSize] * L.blockStride + layer * L.layerStride +
                           (within / L.headDim) * L.headStride +
                           static_cast<int64_t>(position % L.blockSize) * L.headDim + within % L.headDim;
    pool[offset] = k[i];
    pool[offset + L.kvStride] = v[i];
  }
}

void checkLayer(const engine::PagedKv& kv, int32_t layer, const char* op) {
  if (layer < 0 || layer >= kv.layout.layers) throw std::out_of_range(std::string(op) + ": layer out of range");
  if (kv.layout.headDim < 1 || kv.layout.headDim > CudaPagedAttention::kMaxHeadDim) {
    throw std::out_of_range(std::string(op) + ": headDim must be in [1, " +
                            std::to_string(CudaPagedAttention::kMaxHeadDim) + "], got " +
                            std::to_string(kv.layout.headDim));
  }
}

void checkHeads(const engine::PagedKv& kv, int32_t heads, const char* op) {
  if (heads < kv.layout.kvHeads || heads % kv.layout.kvHeads != 0) {
    throw std::out_of_range(std::string(op) + ": heads must be a multiple of the layout's kvHeads");
  }
  if (heads > CudaPagedAttention::kMaxHeads) {
    throw std::out_of_range(std::string(op) + ": heads must be at most " +
                            std::to_string(CudaPagedAttention::kMaxHeads));
  }
}

void checkPointers(bool present, const char* op) {
  if (!present) throw std::invalid_argument(std::string(op) + ": device arrays must not be null");
}

}  // namespace

struct CudaPagedAttention::Impl {
  cuda_detail::Stream stream;
  cuda_detail::DeviceScratch indices;
  // Slots, then table starts and positions (decode), uploaded in one copy.
  // Reused by the next call: a copy from pageable memory has taken the
  // bytes when cudaMemcpyAsync returns.
  std::vector<int32_t> staged;

  const int32_t* upload() {
    const size_t bytes = staged.size() * sizeof(int32_t);
    auto* device = static_cast<int32_t*>(indices.reserve(bytes, stream.get()));
    check(cudaMemcpyAsync(device, staged.data(), bytes, cudaMemcpyHostToDevice, stream.get()),
          "cudaMemcpyAsync (block tables)");
    return device;
  }

  void stageTable(const engine::BlockTableView& table, int64_t tokens, int32_t blockSize) {
    const int64_t needed = (tokens + blockSize - 1) / blockSize;
    staged.insert(staged.end(), table.slots, table.slots + needed);
  }

  void attend(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t rows, AttentionArgs args) {
    args.pool = kv.base;
    args.layout = deviceLayout(kv.layout);
    args.layer = layer;
    args.heads = heads;
    args.group = heads / kv.layout.kvHeads;
    args.scale = 1.0f / std::sqrt(static_cast<float>(kv.layout.headDim));
    const size_t shared = 2 * static_cast<size_t>(kv.layout.headDim) * sizeof(float);
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(heads));
    pagedAttentionKernel<<<grid, kThreads, shared, stream.get()>>>(args);
    cuda_detail::checkLaunch("pagedAttentionKernel");
  }
};

CudaPagedAttention::CudaPagedAttention() : impl_(std::make_unique<Impl>()) {}
CudaPagedAttention::~CudaPagedAttention() = default;

void CudaPagedAttention::appendKv(const engine::PagedKv& kv, int32_t layer, const engine::BlockTableView& table,
                                  int32_t start, int32_t count, const float* k, const float* v) {
  checkLayer(kv, layer, "appendKv");
  if (start < 0 || count < 0) throw std::out_of_range("appendKv: start and count must be non-negative");
  engine::checkBlockTable(kv, table, static_cast<int64_t>(start) + count, "appendKv");
  if (count == 0) return;
  checkPointers(kv.base != nullptr && k != nullptr && v != nullptr, "appendKv");
  Impl& m = *impl_;
  m.staged.clear();
  m.stageTable(table, static_cast<int64_t>(start) + count, kv.layout.blockSize);
  const int32_t* slots = m.upload();
  const int64_t total = static_cast<int64_t>(count) * kv.layout.kvHeads * kv.layout.headDim;
  const int64_t groups = std::min(kMaxAppendGroups, (total + kAppendThreads - 1) / kAppendThreads);
  appendKvKernel<<<static_cast<unsigned>(groups), kAppendThreads, 0, m.stream.get()>>>(
      kv.base, deviceLayout(kv.layout), layer, slots, start, total, k, v);
  cuda_detail::checkLaunch("appendKvKernel");
}

void CudaPagedAttention::prefill(const engine::PagedKv& kv, int32_t layer, int32_t heads,
                                 const engine::BlockTableView& table, int32_t start, int32_t count, const float* q,
                                 float* out) {
  checkLayer(kv, layer, "pagedPrefillAttention");
  checkHeads(kv, heads, "pagedPrefillAttention");
  if (start < 0 || count < 0) throw std::out_of_range("pagedPrefillAttention: start and count must be non-negative");
  engine::checkBlockTable(kv, table, static_cast<int64_t>(start) + count, "pagedPrefillAttention");
  if (count == 0) return;
  checkPointers(kv.base != nullptr && q != nullptr && out != nullptr, "pagedPrefillAttention");
  Impl& m = *impl_;
  m.staged.clear();
  m.stageTable(table, static_cast<int64_t>(start) + count, kv.layout.blockSize);
  AttentionArgs args{};
  args.q = q;
  args.out = out;
  args.slots = m.upload();
  args.firstPosition = start;
  m.attend(kv, layer, heads, count, args);
}

void CudaPagedAttention::decode(const engine::PagedKv& kv, int32_t layer, int32_t heads, int32_t batch,
                                const engine::BlockTableView* tables, const int32_t* positions, const float* q,
                                float* out) {
  checkLayer(kv, layer, "pagedDecodeAttention");
  checkHeads(kv, heads, "pagedDecodeAttention");
  if (batch < 0) throw std::out_of_range("pagedDecodeAttention: batch must be non-negative");
  for (int32_t s = 0; s < batch; s++) {
    if (positions[s] < 0) throw std::out_of_range("pagedDecodeAttention: positions must be non-negative");
    engine::checkBlockTable(kv, tables[s], static_cast<int64_t>(positions[s]) + 1, "pagedDecodeAttention");
  }
  if (batch == 0) return;
  checkPointers(kv.base != nullptr && q != nullptr && out != nullptr, "pagedDecodeAttention");
  Impl& m = *impl_;
  m.staged.clear();
  std::vector<int32_t> starts(static_cast<size_t>(batch));
  for (int32_t s = 0; s < batch; s++) {
    starts[static_cast<size_t>(s)] = static_cast<int32_t>(m.staged.size());
    m.stageTable(tables[s], static_cast<int64_t>(positions[s]) + 1, kv.layout.blockSize);
  }
  const size_t startsAt = m.staged.size();
  m.staged.insert(m.staged.end(), starts.begin(), starts.end());
  m.staged.insert(m.staged.end(), positions, positions + batch);
  const int32_t* device = m.upload();
  AttentionArgs args{};
  args.q = q;
  args.out = out;
  args.slots = device;
  args.tableStarts = device + startsAt;
  args.positions = device + startsAt + batch;
  m.attend(kv, layer, heads, batch, args);
}

void CudaPagedAttention::synchronize() { impl_->stream.synchronize(); }

}  // namespace cachesage
