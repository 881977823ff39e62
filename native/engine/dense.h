// The dense parts of a decoder layer: projections, RMSNorm, RoPE, SwiGLU.
// Activations are row-major [tokens][features]; weight matrices keep Hugging
// Face's [out][in] layout.
#pragma once

#include <cstdint>

#include "thread_pool.h"

namespace cachesage::engine {

// Whether matmulTransposed runs on a CBLAS library (else the plain loops).
bool haveBlas();

#ifdef CACHESAGE_HAVE_CBLAS
// Makes the BLAS library compute on the calling thread: every caller splits
// its products over the engine's pool instead. Idempotent.
void useBlasSingleThreaded();
#endif

// y[n][out] = x[n][in] * w[out][in]^T.
void matmulTransposed(const float* x, const float* w, float* y, int64_t n, int64_t in, int64_t out,
                      ThreadPool& pool);
// The oracle: the same product in plain loops, accumulated in double.
void referenceMatmulTransposed(const float* x, const float* w, float* y, int64_t n, int64_t in,
                               int64_t out);

// y = x / sqrt(mean(x^2) + eps) * weight, row by row (y may be x).
void rmsNorm(const float* x, const float* weight, float* y, int64_t n, int64_t dim, float eps);

// Rotary position embedding in place, Hugging Face Llama's "rotate half"
// form: dimension i < d/2 pairs with i + d/2, at angle position * theta^(-2i/d).
// x is [n][heads][headDim]; positions[n].
void applyRope(float* x, int64_t n, int32_t heads, int32_t headDim, const int32_t* positions, float theta);

// out[i] = silu(gate[i]) * up[i].
void swiglu(const float* gate, const float* up, float* out, int64_t count);

// Sum of a[i] * b[i] with eight independent accumulators (vectorizes
// without reassociating flags).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
  }
  float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

// y[i] += a * x[i].
inline void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

}  // namespace cachesage::engine
