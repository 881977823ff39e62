// The batched survival computation of survival.h on the device: one thread
// block per workload, float32 inputs, outputs and shared matrices, the same
// quantities and layouts as native/core/survival.cpp.
//
// Shared memory holds the workload's transition matrix (transposed), F_{h-1},
// the running expected steps and the two END vectors; matrices are padded to
// a stride that is a multiple of 4 so rows load as float4. Each thread owns
// one 4x4 tile of F_h: per source state c it loads four T entries and four F
// entries and does 16 multiply-adds, which keeps the loop on the FMA units
// rather than on shared-memory bandwidth. The tile stays in registers until
// every thread has read F_{h-1}, so F_h overwrites it in place.
//
// Precision: the CPU code carries F in double, the kernel in float. Expected
// steps and the END vectors are cheap, so they stay in double (float sums of
// 1 - F drift by ~1e-7 per step, and 1 - (T^h)[a][END] loses what a float g
// rounds off). The tile sums are float up to kFloatHorizon steps and double
// beyond, where rounding of F near 1 would add up across the steps of
// expectedSteps past the 1e-5 the tests allow.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda_backend.h"
#include "cuda_check.cuh"

namespace cachesage {

namespace {

using cuda_detail::check;

// One thread per 4x4 tile, so the widest stride is 4 * sqrt(1024). Up to 64
// states a workload needs at most 256 threads, and three such blocks fit an
// H100 SM's shared memory: that variant gets the registers for it.
constexpr int kSurvivalMaxThreads = 1024;
constexpr int kSurvivalSmallThreads = 256;
constexpr int kSurvivalSmallBlocksPerSM = 3;
constexpr int32_t kMaxStride = 128;
constexpr int32_t kFloatHorizon = 32;
constexpr uint32_t kNoWorkload = 0xffffffffu;

struct SurvivalArgs {
  const float* transitions;
  const int32_t* endState;
  float* reach;
  float* alive;
  float* expectedSteps;
  int32_t states;
  int32_t stride;  // states rounded up to a multiple of 4
  int32_t horizon;
  // Rows of reach may be stored as float4: n is a multiple of 4 and reach
  // is 16-byte aligned.
  bool vectorRows;
  uint32_t* badWorkload;  // lowest workload whose END index is out of range
};

int32_t paddedStride(int32_t states) { return (states + 3) / 4 * 4; }

// expected and the END vectors (double), then T and F (float).
size_t sharedBytes(int32_t stride) {
  const size_t matrix = static_cast<size_t>(stride) * static_cast<size_t>(stride);
  return matrix * sizeof(double) + 2 * static_cast<size_t>(stride) * sizeof(double) +
         2 * matrix * sizeof(float);
}

template <typename Accumulator, int MaxThreads>
__global__ void __launch_bounds__(MaxThreads,
                                  MaxThreads == kSurvivalSmallThreads ? kSurvivalSmallBlocksPerSM
                                                                      : 1)
    survivalKernel(SurvivalArgs args) {
  extern __shared__ float4 sharedStorage[];
  const int32_t n = args.states;
  const int32_t stride = args.stride;
  const int32_t horizon = args.horizon;
  const size_t workload = blockIdx.x;
  const size_t nn = static_cast<size_t>(n) * n;
  const int32_t padded = stride * stride;

  const int32_t end = args.endState[workload];
  if (end < 0 || end >= n) {
    if (threadIdx.x == 0) atomicMin(args.badWorkload, static_cast<uint32_t>(workload));
    return;
  }

  // Offsets are multiples of 16 bytes: padded is a multiple of 16, stride of 4.
  double* expected = reinterpret_cast<double*>(sharedStorage);
  double* endPrevious = expected + padded;  // (T^{h-1})[c][END]
  double* endCurrent = endPrevious + stride;
  float* transposed = reinterpret_cast<float*>(endCurrent + stride);  // [c][a] = T[a][c]
  float* reachSoFar = transposed + padded;                            // F_{h-1}[c][b]

  // Padding rows and columns are zero in T and F, so they add nothing to
  // the products and stay zero.
  const float* transitions = args.transitions + workload * nn;
  for (int32_t k = threadIdx.x; k < padded; k += blockDim.x) {
    const int32_t a = k / stride;
    const int32_t c = k - a * stride;
    transposed[c * stride + a] = a < n && c < n ? transitions[a * n + c] : 0.0f;
    reachSoFar[k] = 0.0f;  // F_0
    expected[k] = 1.0;     // the h = 0 term, 1 - F_0
  }
  for (int32_t k = threadIdx.x; k < stride; k += blockDim.x) {
    endPrevious[k] = k == end ? 1.0 : 0.0;
    endCurrent[k] = 0.0;
  }
  __syncthreads();

  const int32_t tilesPerSide = stride / 4;
  const bool ownsTile = static_cast<int32_t>(threadIdx.x) < tilesPerSide * tilesPerSide;
  const int32_t a0 = static_cast<int32_t>(threadIdx.x) / tilesPerSide * 4;
  const int32_t b0 = static_cast<int32_t>(threadIdx.x) % tilesPerSide * 4;
  float* reachWorkload = args.reach + workload * static_cast<size_t>(horizon) * nn;
  float* aliveWorkload = args.alive + workload * static_cast<size_t>(horizon) * n;

  for (int32_t h = 1; h <= horizon; ++h) {
    // (T^h)[a][END] = sum_c T[a][c] (T^{h-1})[c][END].
    for (int32_t a = threadIdx.x; a < n; a += blockDim.x) {
      double g = 0.0;
      for (int32_t c = 0; c < n; ++c) {
        g = fma(static_cast<double>(transposed[c * stride + a]), endPrevious[c], g);
      }
      endCurrent[a] = g;
      // Streaming stores: outputs are written once and read back only by
      // the host, so they should not evict the inputs from L2.
      __stcs(aliveWorkload + static_cast<size_t>(h - 1) * n + a, static_cast<float>(1.0 - g));
    }
    // F_h[a][b] = (T F_{h-1})[a][b] + T[a][b] (1 - F_{h-1}[b][b]): the
    // first visit to b at step 1 replaces the c = b term's path through b.
    Accumulator sum[4][4];
    if (ownsTile) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int32_t b = b0 + j;
        const Accumulator notYet =
            Accumulator{1} - static_cast<Accumulator>(reachSoFar[b * stride + b]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          sum[i][j] = static_cast<Accumulator>(transposed[b * stride + a0 + i]) * notYet;
        }
      }
      // Unrolled no further than the register budget allows without spills.
      constexpr int kUnroll = sizeof(Accumulator) == sizeof(float) ? 2 : 1;
#pragma unroll kUnroll
      for (int32_t c = 0; c < n; ++c) {
        const float4 t4 = *reinterpret_cast<const float4*>(transposed + c * stride + a0);
        const float4 f4 = *reinterpret_cast<const float4*>(reachSoFar + c * stride + b0);
        const Accumulator tc[4] = {t4.x, t4.y, t4.z, t4.w};
        const Accumulator fc[4] = {f4.x, f4.y, f4.z, f4.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) sum[i][j] = fma(tc[i], fc[j], sum[i][j]);
        }
      }
    }
    // Every thread has read F_{h-1} before any overwrites it with F_h.
    __syncthreads();
    if (ownsTile) {
      float* reachStep = reachWorkload + static_cast<size_t>(h - 1) * nn;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int32_t a = a0 + i;
        const float4 row4 =
            make_float4(static_cast<float>(sum[i][0]), static_cast<float>(sum[i][1]),
                        static_cast<float>(sum[i][2]), static_cast<float>(sum[i][3]));
        *reinterpret_cast<float4*>(reachSoFar + a * stride + b0) = row4;
        if (h < horizon) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            expected[a * stride + b0 + j] += 1.0 - static_cast<double>(sum[i][j]);
          }
        }
        if (a >= n) continue;
        float* row = reachStep + static_cast<size_t>(a) * n;
        if (args.vectorRows) {
          __stcs(reinterpret_cast<float4*>(row + b0), row4);
        } else {
          const float values[4] = {row4.x, row4.y, row4.z, row4.w};
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            if (b0 + j < n) __stcs(row + b0 + j, values[j]);
          }
        }
      }
    }
    double* swap = endPrevious;
    endPrevious = endCurrent;
    endCurrent = swap;
    // F_h and the END vector are complete before step h + 1 reads them.
    __syncthreads();
  }

  float* expectedWorkload = args.expectedSteps + workload * nn;
  for (size_t k = threadIdx.x; k < nn; k += blockDim.x) {
    const int32_t a = static_cast<int32_t>(k / n);
    const int32_t b = static_cast<int32_t>(k - static_cast<size_t>(a) * n);
    __stcs(expectedWorkload + k, static_cast<float>(expected[a * stride + b]));
  }
}

using SurvivalKernel = void (*)(SurvivalArgs);

SurvivalKernel survivalKernelFor(bool floatSums, bool small) {
  if (floatSums) {
    return small ? survivalKernel<float, kSurvivalSmallThreads>
                 : survivalKernel<float, kSurvivalMaxThreads>;
  }
  return small ? survivalKernel<double, kSurvivalSmallThreads>
               : survivalKernel<double, kSurvivalMaxThreads>;
}

int32_t largestStride(size_t sharedLimit) {
  int32_t stride = 4;
  while (stride + 4 <= kMaxStride && sharedBytes(stride + 4) <= sharedLimit) stride += 4;
  return stride;
}

}  // namespace

struct CudaSurvival::Impl {
  cuda_detail::Stream stream;
  cuda_detail::DeviceScratch transitions, endState, reach, alive, expectedSteps, status;
  cuda_detail::PinnedScratch statusHost;
  size_t sharedLimit = 0;
  int32_t maxStates = 0;

  Impl() {
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    int optIn = 0;
    check(cudaDeviceGetAttribute(&optIn, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute(maxSharedMemoryPerBlockOptin)");
    sharedLimit = static_cast<size_t>(optIn);
    maxStates = sharedBytes(4) <= sharedLimit ? largestStride(sharedLimit) : 0;
    // Above 48 KiB of dynamic shared memory a kernel must opt in.
    for (const bool floatSums : {true, false}) {
      for (const bool small : {true, false}) {
        check(cudaFuncSetAttribute(survivalKernelFor(floatSums, small),
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, optIn),
              "cudaFuncSetAttribute(survivalKernel)");
      }
    }
  }

  void run(const SurvivalShape& shape, const float* transitionsDevice,
           const int32_t* endStateDevice, float* reachDevice, float* aliveDevice,
           float* expectedDevice) {
    const cudaStream_t s = stream.get();
    const int32_t stride = paddedStride(shape.states);
    const size_t bytes = sharedBytes(stride);
    auto* badDevice = static_cast<uint32_t*>(status.reserve(sizeof(uint32_t), s));
    auto* badHost = static_cast<uint32_t*>(statusHost.reserve(sizeof(uint32_t)));
    check(cudaMemsetAsync(badDevice, 0xff, sizeof(uint32_t), s), "cudaMemsetAsync");
    const int32_t tiles = (stride / 4) * (stride / 4);
    const int threads = std::max(32, (tiles + 31) / 32 * 32);
    const bool vectorRows =
        shape.states % 4 == 0 && reinterpret_cast<uintptr_t>(reachDevice) % 16 == 0;
    const SurvivalArgs args{transitionsDevice, endStateDevice, reachDevice,   aliveDevice,
                            expectedDevice,    shape.states,   stride,        shape.horizon,
                            vectorRows,        badDevice};
    const SurvivalKernel kernel = survivalKernelFor(shape.horizon <= kFloatHorizon,
                                                    threads <= kSurvivalSmallThreads);
    kernel<<<static_cast<unsigned>(shape.workloads), threads, bytes, s>>>(args);
    cuda_detail::checkLaunch("survivalKernel");
    check(cudaMemcpyAsync(badHost, badDevice, sizeof(uint32_t), cudaMemcpyDeviceToHost, s),
          "cudaMemcpyAsync (status)");
    stream.synchronize();
    if (*badHost != kNoWorkload) {
      int32_t end = 0;
      check(cudaMemcpy(&end, endStateDevice + *badHost, sizeof end, cudaMemcpyDefault),
            "cudaMemcpy (endState)");
      throw std::out_of_range("survival: endState[" + std::to_string(*badHost) + "] = " +
                              std::to_string(end) + " is out of range [0, " +
                              std::to_string(shape.states) + ")");
    }
  }

  void checkShape(const SurvivalShape& shape) const {
    shape.check();
    if (shape.states > maxStates) {
      throw std::out_of_range("survival: states must be at most " + std::to_string(maxStates) +
                              " on this device (shared memory), got " +
                              std::to_string(shape.states));
    }
  }
};

CudaSurvival::CudaSurvival() : impl_(std::make_unique<Impl>()) {}
CudaSurvival::~CudaSurvival() = default;

int32_t CudaSurvival::maxStates() const { return impl_->maxStates; }

void CudaSurvival::computeOnDevice(const SurvivalShape& shape, const float* transitions,
                                   const int32_t* endState, float* reach, float* alive,
                                   float* expectedSteps) {
  impl_->checkShape(shape);
  if (transitions == nullptr || endState == nullptr || reach == nullptr || alive == nullptr ||
      expectedSteps == nullptr) {
    throw std::invalid_argument("survival: device arrays must not be null");
  }
  impl_->run(shape, transitions, endState, reach, alive, expectedSteps);
}

void CudaSurvival::compute(const SurvivalInputView& input, float* reach, float* alive,
                           float* expectedSteps) {
  validateSurvivalInput(input);
  if (reach == nullptr || alive == nullptr || expectedSteps == nullptr) {
    throw std::invalid_argument("survival: output buffers must not be null");
  }
  Impl& m = *impl_;
  const SurvivalShape& shape = input.shape;
  m.checkShape(shape);
  const cudaStream_t s = m.stream.get();
  const size_t transitionBytes = shape.transitionsSize() * sizeof(float);
  const size_t endBytes = static_cast<size_t>(shape.workloads) * sizeof(int32_t);
  const size_t reachBytes = shape.reachSize() * sizeof(float);
  const size_t aliveBytes = shape.aliveSize() * sizeof(float);
  const size_t expectedBytes = shape.expectedStepsSize() * sizeof(float);
  auto* transitionsDevice = static_cast<float*>(m.transitions.reserve(transitionBytes, s));
  auto* endDevice = static_cast<int32_t*>(m.endState.reserve(endBytes, s));
  auto* reachDevice = static_cast<float*>(m.reach.reserve(reachBytes, s));
  auto* aliveDevice = static_cast<float*>(m.alive.reserve(aliveBytes, s));
  auto* expectedDevice = static_cast<float*>(m.expectedSteps.reserve(expectedBytes, s));
  check(cudaMemcpyAsync(transitionsDevice, input.transitions, transitionBytes,
                        cudaMemcpyHostToDevice, s),
        "cudaMemcpyAsync (transitions)");
  check(cudaMemcpyAsync(endDevice, input.endState, endBytes, cudaMemcpyHostToDevice, s),
        "cudaMemcpyAsync (endState)");
  m.run(shape, transitionsDevice, endDevice, reachDevice, aliveDevice, expectedDevice);
  check(cudaMemcpy(reach, reachDevice, reachBytes, cudaMemcpyDeviceToHost), "cudaMemcpy (reach)");
  check(cudaMemcpy(alive, aliveDevice, aliveBytes, cudaMemcpyDeviceToHost), "cudaMemcpy (alive)");
  check(cudaMemcpy(expectedSteps, expectedDevice, expectedBytes, cudaMemcpyDeviceToHost),
        "cudaMemcpy (expectedSteps)");
}

}  // namespace cachesage
