// Every engine kernel against its plain oracle on random shapes, then the
// whole decoder (paged, batched, chunked) against the dense reference
// decoder. Usage: cachesage_engine_test [seed]. Exits non-zero on the first
// failing check and prints the seed to rerun it with.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "attention.h"
#include "dense.h"
#include "engine.h"

using namespace cachesage::engine;

namespace {

unsigned seed = 1;
std::mt19937 rng;

int uniformInt(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
std::vector<float> randomVector(size_t n) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> out(n);
  for (auto& x : out) x = u(rng);
  return out;
}

[[noreturn]] void fail(const std::string& what) {
  std::printf("FAIL (seed %u): %s\n", seed, what.c_str());
  std::exit(1);
}

// Largest |a - b| / (1 + |b|) over the arrays.
double maxError(const float* a, const float* b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / (1.0 + std::fabs(b[i])));
  return worst;
}

void expectClose(const float* got, const float* want, size_t n, double tolerance, const std::string& what) {
  double error = maxError(got, want, n);
  if (!(error <= tolerance)) fail(what + ": error " + std::to_string(error) + " above " + std::to_string(tolerance));
}

// A pool of `blocks` blocks and a random permutation of its slots.
struct Pool {
  PagedKv kv;
  std::vector<float> memory;
  std::vector<int32_t> slots;
  Pool(PageLayout layout, int32_t blocks) {
    memory = randomVector(static_cast<size_t>(layout.blockStride() * blocks));
    kv.layout = layout;
    kv.base = memory.data();
    kv.blocks = blocks;
    slots.resize(static_cast<size_t>(blocks));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
  }
};

PageLayout randomLayout() {
  PageLayout L;
  L.layers = uniformInt(1, 3);
  L.kvHeads = uniformInt(1, 3);
  L.blockSize = std::vector<int>{1, 3, 4, 16}[static_cast<size_t>(uniformInt(0, 3))];
  // Any even head size, and the sizes the kernels specialise (64, 128) a quarter of the time each.
  const int pick = uniformInt(0, 3);
  L.headDim = pick == 0 ? 64 : pick == 1 ? 128 : 2 * uniformInt(1, 24);
  return L;
}

// The documented layout, spelled out index by index: the oracle of appendKv.
void scatterReference(PagedKv& kv, int32_t layer, const int32_t* table, int32_t start, int32_t count,
                      const float* k, const float* v) {
  const PageLayout& L = kv.layout;
  for (int32_t i = 0; i < count; i++) {
    int32_t p = start + i;
    for (int32_t h = 0; h < L.kvHeads; h++) {
      for (int32_t e = 0; e < L.headDim; e++) {
        int64_t block = table[p / L.blockSize];
        int64_t base = block * (L.layers * 2 * L.kvHeads * L.blockSize * L.headDim) +
                       layer * (2 * L.kvHeads * L.blockSize * L.headDim) + h * (L.blockSize * L.headDim) +
                       (p % L.blockSize) * L.headDim + e;
        kv.base[base] = k[(i * L.kvHeads + h) * L.headDim + e];
        kv.base[base + L.kvHeads * L.blockSize * L.headDim] = v[(i * L.kvHeads + h) * L.headDim + e];
      }
    }
  }
}

void testMatmul(ThreadPool& pool) {
  for (int trial = 0; trial < 20; trial++) {
    int n = trial % 4 == 0 ? 1 : uniformInt(1, 40), in = uniformInt(1, 130), out = uniformInt(1, 90);
    auto x = randomVector(static_cast<size_t>(n * in)), w = randomVector(static_cast<size_t>(out * in));
    std::vector<float> got(static_cast<size_t>(n * out)), want(got.size());
    matmulTransposed(x.data(), w.data(), got.data(), n, in, out, pool);
    referenceMatmulTransposed(x.data(), w.data(), want.data(), n, in, out);
    expectClose(got.data(), want.data(), got.size(), 1e-5, "matmulTransposed " + std::to_string(n) + "x" +
                                                               std::to_string(in) + "x" + std::to_string(out));
  }
}

void testAppend() {
  for (int trial = 0; trial < 30; trial++) {
    PageLayout L = randomLayout();
    int32_t blocks = uniformInt(4, 12);
    Pool got(L, blocks);
    Pool want = got;
    want.kv.base = want.memory.data();
    int32_t tokens = blocks * L.blockSize;
    int32_t start = uniformInt(0, tokens - 1), count = uniformInt(0, tokens - start);
    int32_t layer = uniformInt(0, L.layers - 1);
    auto k = randomVector(static_cast<size_t>(count * L.kvHeads * L.headDim)), v = randomVector(k.size());
    appendKv(got.kv, layer, {got.slots.data(), blocks}, start, count, k.data(), v.data());
    scatterReference(want.kv, layer, want.slots.data(), start, count, k.data(), v.data());
    if (std::memcmp(got.memory.data(), want.memory.data(), got.memory.size() * sizeof(float)) != 0) {
      fail("appendKv: pool bytes differ from the layout's reference scatter (start " + std::to_string(start) +
           ", count " + std::to_string(count) + ")");
    }
  }
  // A table too short, or a slot outside the pool, is refused before any write.
  Pool pool(randomLayout(), 2);
  std::vector<float> row(static_cast<size_t>(pool.kv.layout.kvHeads * pool.kv.layout.headDim));
  int32_t bad[2] = {0, 2};
  bool threw = false;
  try {
    appendKv(pool.kv, 0, {bad, 2}, 2 * pool.kv.layout.blockSize - 1, 1, row.data(), row.data());
  } catch (const std::out_of_range&) {
    threw = true;
  }
  if (!threw) fail("appendKv accepted a slot outside the pool");
}

// Fills positions [0, tokens) with random K/V through the reference scatter; returns dense K and V.
std::pair<std::vector<float>, std::vector<float>> fillDense(Pool& pool, int32_t layer, int32_t tokens, const int32_t* table) {
  const PageLayout& L = pool.kv.layout;
  auto k = randomVector(static_cast<size_t>(tokens * L.kvHeads * L.headDim)), v = randomVector(k.size());
  scatterReference(pool.kv, layer, table, 0, tokens, k.data(), v.data());
  return {k, v};
}

void testPrefillAttention(ThreadPool& pool) {
  for (int trial = 0; trial < 30; trial++) {
    PageLayout L = randomLayout();
    int32_t heads = L.kvHeads * uniformInt(1, 4);
    // Some chunks longer than the matrix-product path's 128-row tiles.
    int32_t start = uniformInt(0, 40), count = trial % 6 == 0 ? uniformInt(129, 300) : uniformInt(1, 40);
    int32_t blocks = (start + count + L.blockSize - 1) / L.blockSize + uniformInt(0, 3);
    Pool p(L, blocks);
    int32_t layer = uniformInt(0, L.layers - 1);
    auto [k, v] = fillDense(p, layer, start + count, p.slots.data());
    auto q = randomVector(static_cast<size_t>(count * heads * L.headDim));
    std::vector<float> got(q.size()), want(q.size());
    referenceAttention(heads, L.kvHeads, L.headDim, start, count, q.data(), k.data(), v.data(), want.data());
    const std::string shape = "heads " + std::to_string(heads) + "/" + std::to_string(L.kvHeads) + " start " +
                              std::to_string(start) + " count " + std::to_string(count) + " block " +
                              std::to_string(L.blockSize);
    // The dispatch (matrix products where CBLAS is built in) and the per-row path every build has.
    pagedPrefillAttention(p.kv, layer, heads, {p.slots.data(), blocks}, start, count, q.data(), got.data(), pool);
    expectClose(got.data(), want.data(), got.size(), 2e-6, "pagedPrefillAttention " + shape);
    std::fill(got.begin(), got.end(), 0.0f);
    prefillPerRow(p.kv, layer, heads, {p.slots.data(), blocks}, start, count, q.data(), got.data(), pool);
    expectClose(got.data(), want.data(), got.size(), 2e-6, "prefillPerRow " + shape);
  }
}

void testDecodeAttention(ThreadPool& pool) {
  for (int trial = 0; trial < 20; trial++) {
    PageLayout L = randomLayout();
    int32_t heads = L.kvHeads * uniformInt(1, 4);
    int32_t batch = uniformInt(1, 6);
    std::vector<int32_t> positions(static_cast<size_t>(batch)), firstBlock(static_cast<size_t>(batch));
    int32_t blocks = 0;
    for (int32_t s = 0; s < batch; s++) {
      positions[static_cast<size_t>(s)] = uniformInt(0, 60);
      firstBlock[static_cast<size_t>(s)] = blocks;
      blocks += positions[static_cast<size_t>(s)] / L.blockSize + 1;
    }
    Pool p(L, blocks);
    int32_t layer = uniformInt(0, L.layers - 1);
    std::vector<BlockTableView> tables;
    auto q = randomVector(static_cast<size_t>(batch * heads * L.headDim));
    std::vector<float> got(q.size()), want(q.size());
    for (int32_t s = 0; s < batch; s++) {
      const int32_t* table = p.slots.data() + firstBlock[static_cast<size_t>(s)];
      int32_t position = positions[static_cast<size_t>(s)];
      tables.push_back({table, position / L.blockSize + 1});
      auto [k, v] = fillDense(p, layer, position + 1, table);
      size_t row = static_cast<size_t>(s * heads * L.headDim);
      referenceAttention(heads, L.kvHeads, L.headDim, position, 1, &q[row], k.data(), v.data(), &want[row]);
    }
    pagedDecodeAttention(p.kv, layer, heads, batch, tables.data(), positions.data(), q.data(), got.data(), pool);
    expectClose(got.data(), want.data(), got.size(), 2e-6, "pagedDecodeAttention batch " + std::to_string(batch));
  }
}

// RoPE as a rotation of complex numbers (x[i] + j x[i + d/2]) and RMSNorm
// and SwiGLU from their formulas, independent of dense.cpp.
void testPointwise() {
  for (int trial = 0; trial < 10; trial++) {
    int32_t n = uniformInt(1, 9), heads = uniformInt(1, 4), headDim = 2 * uniformInt(1, 16);
    float theta = uniformInt(0, 1) ? 10000.0f : 500000.0f;
    std::vector<int32_t> positions(static_cast<size_t>(n));
    for (auto& p : positions) p = uniformInt(0, 5000);
    auto x = randomVector(static_cast<size_t>(n * heads * headDim));
    std::vector<float> want(x.size());
    int32_t half = headDim / 2;
    for (int32_t r = 0; r < n; r++) {
      for (int32_t h = 0; h < heads; h++) {
        for (int32_t i = 0; i < half; i++) {
          size_t at = static_cast<size_t>((r * heads + h) * headDim + i);
          double angle = positions[static_cast<size_t>(r)] / std::pow(static_cast<double>(theta), 2.0 * i / headDim);
          std::complex<double> z = std::complex<double>(x[at], x[at + static_cast<size_t>(half)]) * std::polar(1.0, angle);
          want[at] = static_cast<float>(z.real());
          want[at + static_cast<size_t>(half)] = static_cast<float>(z.imag());
        }
      }
    }
    applyRope(x.data(), n, heads, headDim, positions.data(), theta);
    expectClose(x.data(), want.data(), x.size(), 1e-5, "applyRope vs complex rotation");

    int32_t dim = uniformInt(1, 100);
    auto rows = randomVector(static_cast<size_t>(n * dim)), weight = randomVector(static_cast<size_t>(dim));
    std::vector<float> normed(rows.size()), expected(rows.size());
    for (int32_t r = 0; r < n; r++) {
      double meanSquare = 0;
      for (int32_t i = 0; i < dim; i++) meanSquare += std::pow(rows[static_cast<size_t>(r * dim + i)], 2) / dim;
      for (int32_t i = 0; i < dim; i++) {
        size_t at = static_cast<size_t>(r * dim + i);
        expected[at] = static_cast<float>(rows[at] / std::sqrt(meanSquare + 1e-5) * weight[static_cast<size_t>(i)]);
      }
    }
    rmsNorm(rows.data(), weight.data(), normed.data(), n, dim, 1e-5f);
    expectClose(normed.data(), expected.data(), normed.size(), 1e-5, "rmsNorm vs its formula");

    auto gate = randomVector(64), up = randomVector(64);
    std::vector<float> product(64), formula(64);
    for (size_t i = 0; i < 64; i++) formula[i] = static_cast<float>(gate[i] * (1.0 / (1.0 + std::exp(-gate[i]))) * up[i]);
    swiglu(gate.data(), up.data(), product.data(), 64);
    expectClose(product.data(), formula.data(), 64, 1e-6, "swiglu vs its formula");
  }
}

ModelConfig randomConfig() {
  ModelConfig c;
  c.layers = uniformInt(1, 3);
  c.kvHeads = uniformInt(1, 2);
  c.heads = c.kvHeads * uniformInt(1, 3);
  c.modelDim = c.heads * 2 * uniformInt(2, 8);
  c.ffnDim = uniformInt(8, 96);
  c.vocab = uniformInt(16, 200);
  c.ropeTheta = uniformInt(0, 1) ? 10000.0f : 500000.0f;
  c.tiedEmbeddings = uniformInt(0, 1) == 1;
  return c;
}

// Paged one-shot prefill against the dense reference decoder; chunked
// prefill and decode (batched beside another sequence) against one-shot.
void testEngine(int32_t threads) {
  for (int trial = 0; trial < 8; trial++) {
    ModelConfig c = randomConfig();
    int32_t blockSize = uniformInt(1, 8);
    int32_t n = uniformInt(2, 40);
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (auto& t : tokens) t = uniformInt(0, c.vocab - 1);
    Weights w = randomWeights(c, rng());
    std::vector<float> want = referenceForward(c, w, tokens.data(), n);
    PageLayout L = pageLayout(c, blockSize);
    int32_t perSequence = (n + blockSize - 1) / blockSize;
    Pool p(L, 2 * perSequence + 2);
    Engine engine(c, w, blockSize, p.memory.data(), static_cast<int64_t>(p.memory.size() * sizeof(float)), threads);
    const int32_t* tableA = p.slots.data();
    const int32_t* tableB = p.slots.data() + perSequence;
    std::vector<float> oneShot(static_cast<size_t>(n * c.vocab));
    engine.forward({{tokens.data(), n, 0, 0, {tableA, perSequence}}}, true, oneShot.data());
    std::string shape = "layers " + std::to_string(c.layers) + " heads " + std::to_string(c.heads) + "/" +
                        std::to_string(c.kvHeads) + " dim " + std::to_string(c.modelDim) + " block " +
                        std::to_string(blockSize) + " tokens " + std::to_string(n);
    expectClose(oneShot.data(), want.data(), want.size(), 1e-4, "engine one-shot prefill vs dense reference, " + shape);

    // Sequence B: the same tokens in random chunks, each step batched with a
    // decode step of sequence A at its last position (rewriting identical K/V).
    std::vector<float> stepLogits(static_cast<size_t>(2 * c.vocab));
    for (int32_t at = 0; at < n;) {
      int32_t count = std::min(n - at, uniformInt(1, 9));
      engine.forward({{tokens.data() + at, count, at, at, {tableB, perSequence}},
                      {tokens.data() + n - 1, 1, n - 1, n, {tableA, perSequence}}},
                     false, stepLogits.data());
      at += count;
      expectClose(stepLogits.data(), &want[static_cast<size_t>((at - 1) * c.vocab)], static_cast<size_t>(c.vocab), 1e-4,
                  "engine chunked prefill, last logits at " + std::to_string(at) + ", " + shape);
      expectClose(&stepLogits[static_cast<size_t>(c.vocab)], &want[static_cast<size_t>((n - 1) * c.vocab)],
                  static_cast<size_t>(c.vocab), 1e-4, "engine decode beside a prefill, " + shape);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  seed = argc > 1 ? static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10)) : std::random_device{}();
  rng.seed(seed);
  ThreadPool pool(2);
  testMatmul(pool);
  testPointwise();
  testAppend();
  testPrefillAttention(pool);
  testDecodeAttention(pool);
  testEngine(1);
  testEngine(3);
  std::printf("engine kernels and decoder match their oracles (seed %u, %s)\n", seed,
              haveBlas() ? "CBLAS" : "plain loops");
  return 0;
}
