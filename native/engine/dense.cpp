#include "dense.h"

#include <cmath>
#include <mutex>
#include <vector>

#ifdef CACHESAGE_HAVE_CBLAS
#include <cblas.h>
#endif

namespace cachesage::engine {

#ifdef CACHESAGE_HAVE_CBLAS
void useBlasSingleThreaded() {
  // OpenBLAS's own threads keep spinning for a while after each product and
  // would take the cores from the pool's threads running attention beside
  // them (decode attention read KV at 10 GB/s with them, 21 without):
  // the library runs on the calling thread and the pool splits the work.
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}
#endif

bool haveBlas() {
#ifdef CACHESAGE_HAVE_CBLAS
  return true;
#else
  return false;
#endif
}

void matmulTransposed(const float* x, const float* w, float* y, int64_t n, int64_t in, int64_t out,
                      ThreadPool& pool) {
#ifdef CACHESAGE_HAVE_CBLAS
  useBlasSingleThreaded();
  // Each thread takes a range of output features: its own rows of w.
  pool.parallelFor(out, [&](int64_t begin, int64_t end) {
    const auto width = static_cast<blasint>(end - begin);
    if (n == 1) {
      // One row (a decode step): a matrix-vector product streams w once, where
      // the matrix-matrix path would first pack it.
      cblas_sgemv(CblasRowMajor, CblasNoTrans, width, static_cast<blasint>(in), 1.0f, w + begin * in,
                  static_cast<blasint>(in), x, 1, 0.0f, y + begin, 1);
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), width, static_cast<blasint>(in),
                1.0f, x, static_cast<blasint>(in), w + begin * in, static_cast<blasint>(in), 0.0f, y + begin,
                static_cast<blasint>(out));
  });
#else
  // Split over output features so every thread streams its own rows of w.
  pool.parallelFor(out, [&](int64_t begin, int64_t end) {
    for (int64_t o0 = begin; o0 < end; o0 += 64) {
      int64_t o1 = o0 + 64 < end ? o0 + 64 : end;
      for (int64_t r = 0; r < n; r++) {
        const float* row = x + r * in;
        for (int64_t o = o0; o < o1; o++) y[r * out + o] = dot(row, w + o * in, in);
      }
    }
  });
#endif
}

void referenceMatmulTransposed(const float* x, const float* w, float* y, int64_t n, int64_t in,
                               int64_t out) {
  for (int64_t r = 0; r < n; r++) {
    for (int64_t o = 0; o < out; o++) {
      double sum = 0;
      for (int64_t i = 0; i < in; i++) sum += static_cast<double>(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = static_cast<float>(sum);
    }
  }
}

void rmsNorm(const float* x, const float* weight, float* y, int64_t n, int64_t dim, float eps) {
  for (int64_t r = 0; r < n; r++) {
    const float* row = x + r * dim;
    double squares = 0;
    for (int64_t i = 0; i < dim; i++) squares += static_cast<double>(row[i]) * row[i];
    float inverse = static_cast<float>(1.0 / std::sqrt(squares / static_cast<double>(dim) + eps));
    float* dst = y + r * dim;
    for (int64_t i = 0; i < dim; i++) dst[i] = row[i] * inverse * weight[i];
  }
}

void applyRope(float* x, int64_t n, int32_t heads, int32_t headDim, const int32_t* positions, float theta) {
  int32_t half = headDim / 2;
  std::vector<double> inverseFrequency(static_cast<size_t>(half));
  for (int32_t i = 0; i < half; i++) {
    inverseFrequency[static_cast<size_t>(i)] = std::pow(static_cast<double>(theta), -2.0 * i / headDim);
  }
  std::vector<float> cosines(static_cast<size_t>(half)), sines(static_cast<size_t>(half));
  for (int64_t r = 0; r < n; r++) {
    for (int32_t i = 0; i < half; i++) {
      double angle = positions[r] * inverseFrequency[static_cast<size_t>(i)];
      cosines[static_cast<size_t>(i)] = static_cast<float>(std::cos(angle));
      sines[static_cast<size_t>(i)] = static_cast<float>(std::sin(angle));
    }
    for (int32_t h = 0; h < heads; h++) {
      float* v = x + (r * heads + h) * headDim;
      for (int32_t i = 0; i < half; i++) {
        float a = v[i], b = v[i + half];
        float c = cosines[static_cast<size_t>(i)], s = sines[static_cast<size_t>(i)];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace cachesage::engine
