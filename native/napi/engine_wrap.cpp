#include "engine_wrap.h"

#include <cstring>
#include <string>
#include <vector>

#include "dense.h"
#include "napi_util.h"

#ifdef CACHESAGE_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_data_plane_wrap.h"
#endif

namespace cachesage::napi {

namespace {

int32_t intField(const Napi::Object& config, const char* name, int32_t min, int32_t max) {
  Napi::Value v = config.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(config.Env(), std::string("NativeEngine: config.") + name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || static_cast<double>(static_cast<int32_t>(d)) != d) {
    throw Napi::RangeError::New(config.Env(), std::string("NativeEngine: config.") + name + " must be an integer in [" +
                                                  std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int32_t>(d);
}

float floatField(const Napi::Object& config, const char* name) {
  Napi::Value v = config.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(config.Env(), std::string("NativeEngine: config.") + name + " must be a number");
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

// The batch of forward() and beginPass(): arguments first..first+6 are
// tokens, counts, starts, writeFrom, tables, tableLengths, allLogits. Chunk
// s owns counts[s] consecutive entries of `tokens` and tableLengths[s]
// consecutive entries of `tables`; the views point into the JS arrays.
std::vector<engine::SequenceChunk> batchArgs(const Napi::CallbackInfo& info, const char* op, bool* allLogits) {
  Napi::Env env = info.Env();
  auto tokens = idsArg(info, 0, op);
  auto counts = idsArg(info, 1, op);
  auto starts = idsArg(info, 2, op);
  auto writeFrom = idsArg(info, 3, op);
  auto tables = idsArg(info, 4, op);
  auto tableLengths = idsArg(info, 5, op);
  if (!arg(info, 6).IsBoolean()) throw Napi::TypeError::New(env, argName(op, 6) + " must be a boolean");
  *allLogits = arg(info, 6).As<Napi::Boolean>().Value();
  size_t n = counts.ElementLength();
  if (starts.ElementLength() != n || writeFrom.ElementLength() != n || tableLengths.ElementLength() != n) {
    throw Napi::RangeError::New(env, std::string(op) + ": counts, starts, writeFrom and tableLengths differ in length");
  }
  if (n == 0) throw Napi::RangeError::New(env, std::string(op) + ": the batch has no chunks");
  std::vector<engine::SequenceChunk> batch(n);
  size_t token = 0, table = 0;
  for (size_t s = 0; s < n; s++) {
    if (counts[s] < 1 || tableLengths[s] < 0) throw Napi::RangeError::New(env, std::string(op) + ": bad count or table length");
    batch[s].tokens = tokens.Data() + token;
    batch[s].count = counts[s];
    batch[s].start = starts[s];
    batch[s].writeFrom = writeFrom[s];
    batch[s].table = {tables.Data() + table, tableLengths[s]};
    token += static_cast<size_t>(counts[s]);
    table += static_cast<size_t>(tableLengths[s]);
    if (token > tokens.ElementLength() || table > tables.ElementLength()) {
      throw Napi::RangeError::New(env, std::string(op) + ": chunk " + std::to_string(s) + " runs past the tokens or tables array");
    }
  }
  if (token != tokens.ElementLength() || table != tables.ElementLength()) {
    throw Napi::RangeError::New(env, std::string(op) + ": the counts and table lengths do not add up to the arrays' lengths");
  }
  return batch;
}

Napi::Float32Array copyOf(const Napi::Env& env, const float* values, size_t count) {
  Napi::Float32Array out = Napi::Float32Array::New(env, count);
  if (count > 0) std::memcpy(out.Data(), values, count * sizeof(float));
  return out;
}

}  // namespace

Napi::Function EngineWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeEngine",
                     {
                         InstanceMethod<&EngineWrap::Forward>("forward"),
                         InstanceMethod<&EngineWrap::BeginPass>("beginPass"),
                         InstanceMethod<&EngineWrap::Project>("project"),
                         InstanceMethod<&EngineWrap::FinishLayer>("finishLayer"),
                         InstanceMethod<&EngineWrap::PassLogits>("passLogits"),
                         InstanceMethod<&EngineWrap::DecodeAttention>("decodeAttention"),
                         InstanceMethod<&EngineWrap::Info>("info"),
                     });
}

// new NativeEngine(config, blockSize, pool: ArrayBuffer | NativeCudaDataPlane | number,
//                  threads, seed, weightsPath: string | null)
EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
  Napi::Env env = info.Env();
  const char* op = "NativeEngine";
  if (!arg(info, 0).IsObject()) throw Napi::TypeError::New(env, argName(op, 0) + " must be an object");
  Napi::Object c = arg(info, 0).As<Napi::Object>();
  engine::ModelConfig config;
  config.layers = intField(c, "layers", 1, 4096);
  config.modelDim = intField(c, "modelDim", 1, 1 << 16);
  config.heads = intField(c, "heads", 1, 1 << 16);
  config.kvHeads = intField(c, "kvHeads", 1, 1 << 16);
  config.ffnDim = intField(c, "ffnDim", 1, 1 << 18);
  config.vocab = intField(c, "vocab", 1, 1 << 22);
  config.ropeTheta = floatField(c, "ropeTheta");
  config.normEps = floatField(c, "normEps");
  config.tiedEmbeddings = c.Get("tiedEmbeddings").ToBoolean().Value();
  int32_t blockSize = int32Arg(info, 1, op, 1, 1 << 16);
  Napi::Value poolArg = arg(info, 2);
#ifdef CACHESAGE_HAVE_CUDA
  std::shared_ptr<CudaDataPlane> plane = CudaDataPlaneWrap::Shared(poolArg);
  if (poolArg.IsObject() && !poolArg.IsArrayBuffer() && !plane) {
    throw Napi::Error::New(env, argName(op, 2) + " is a destroyed or foreign object, not a live NativeCudaDataPlane");
  }
#endif
  if (!poolArg.IsArrayBuffer() && !poolArg.IsNumber()
#ifdef CACHESAGE_HAVE_CUDA
      && !plane
#endif
  ) {
    throw Napi::TypeError::New(env, argName(op, 2) + " must be an ArrayBuffer, a block count or (CUDA builds) a NativeCudaDataPlane");
  }
  int32_t threads = int32Arg(info, 3, op, 1, 1024);
  double seed = numberArg(info, 4, op, 0, kMaxSafeInteger);
  Napi::Value path = arg(info, 5);
  if (!path.IsNull() && !path.IsString()) throw Napi::TypeError::New(env, argName(op, 5) + " must be a string or null");
  const int32_t external = poolArg.IsNumber() ? int32Arg(info, 2, op, 1) : 0;
  engine_ = guarded(env, [&] {
    engine::validateConfig(config);
    engine::Weights weights = path.IsString() ? engine::loadSafetensors(config, path.As<Napi::String>().Utf8Value())
                                              : engine::randomWeights(config, static_cast<uint64_t>(seed));
#ifdef CACHESAGE_HAVE_CUDA
    if (plane) {
      return std::make_unique<engine::Engine>(config, std::move(weights), blockSize, plane->devicePool(),
                                              static_cast<int64_t>(plane->blocks(Tier::Device)) * plane->bytesPerBlock(),
                                              threads, std::make_unique<CudaEngineAttention>());
    }
#endif
    if (external > 0) return std::make_unique<engine::Engine>(config, std::move(weights), blockSize, external, threads);
    Napi::ArrayBuffer pool = poolArg.As<Napi::ArrayBuffer>();
    return std::make_unique<engine::Engine>(config, std::move(weights), blockSize, pool.Data(),
                                            static_cast<int64_t>(pool.ByteLength()), threads);
  });
  if (poolArg.IsArrayBuffer()) pool_ = Napi::Persistent(poolArg.As<Napi::ArrayBuffer>());
#ifdef CACHESAGE_HAVE_CUDA
  devicePlane_ = plane;
#endif
}

void EngineWrap::checkPool(const Napi::Env& env, const char* op) const {
  if (engine_->kv().base == nullptr) {
    throw Napi::Error::New(env, std::string(op) +
                                    ": this engine's KV pool is not in this process's memory (it was made from a block "
                                    "count); run passes with beginPass, project, finishLayer and passLogits");
  }
  if (pool_.IsEmpty()) return;
  // The engine computes in the pool's memory, which the ArrayBuffer owns: a
  // transfer detaches it (the memory then goes with the new buffer, and is
  // freed with it) and shrinking a resizable buffer releases its pages.
  // Touch it only while it is still where, and as large as, it was.
  Napi::ArrayBuffer pool = pool_.Value();
  const engine::PagedKv& kv = engine_->kv();
  if (pool.Data() != static_cast<void*>(kv.base) ||
      static_cast<int64_t>(pool.ByteLength()) < static_cast<int64_t>(kv.blocks) * kv.layout.bytesPerBlock()) {
    throw Napi::Error::New(env, std::string(op) + ": the KV pool's ArrayBuffer was transferred or shrunk since the engine was made");
  }
}

// forward(tokens, counts, starts, writeFrom, tables, tableLengths, allLogits) -> Float32Array
Napi::Value EngineWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "forward";
  checkPool(env, op);
  bool allLogits = false;
  std::vector<engine::SequenceChunk> batch = batchArgs(info, op, &allLogits);
  int64_t rows = engine::Engine::logitRows(batch, allLogits);
  Napi::Float32Array logits = Napi::Float32Array::New(env, static_cast<size_t>(rows * engine_->config().vocab));
  guarded(env, [&] { engine_->forward(batch, allLogits, logits.Data()); });
  return logits;
}

// beginPass(tokens, counts, starts, writeFrom, tables, tableLengths, allLogits):
// starts a pass in place of any unfinished one; the pass copies the arrays.
Napi::Value EngineWrap::BeginPass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool allLogits = false;
  std::vector<engine::SequenceChunk> batch = batchArgs(info, "beginPass", &allLogits);
  // A refused batch leaves the running pass, if any.
  pass_ = guarded(env, [&] { return std::make_unique<engine::ForwardPass>(*engine_, batch, allLogits); });
  return env.Undefined();
}

engine::ForwardPass& EngineWrap::pass(const Napi::Env& env, const char* op) {
  if (!pass_) throw Napi::Error::New(env, std::string(op) + ": no pass is running (call beginPass first)");
  return *pass_;
}

// project() -> { layer, q, k, v }: the next layer's rotated queries
// ([rows][heads][headDim]) and new K/V rows ([rows][kvHeads][headDim]).
Napi::Value EngineWrap::Project(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  engine::ForwardPass& p = pass(env, "project");
  if (p.projected()) throw Napi::Error::New(env, "project: layer " + std::to_string(p.layer()) + " is projected and waits for finishLayer");
  if (p.layer() >= engine_->config().layers) throw Napi::Error::New(env, "project: every layer has run; call passLogits");
  guarded(env, [&] { p.project(); });
  const engine::ModelConfig& c = engine_->config();
  const size_t rows = static_cast<size_t>(p.rows());
  Napi::Object out = Napi::Object::New(env);
  out.Set("layer", p.layer());
  out.Set("q", copyOf(env, p.q(), rows * static_cast<size_t>(c.modelDim)));
  out.Set("k", copyOf(env, p.k(), rows * static_cast<size_t>(c.kvDim())));
  out.Set("v", copyOf(env, p.v(), rows * static_cast<size_t>(c.kvDim())));
  return out;
}

// finishLayer(attention: Float32Array [rows][heads][headDim]): the layer's
// output projection and MLP over the attention computed by the caller.
Napi::Value EngineWrap::FinishLayer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "finishLayer";
  engine::ForwardPass& p = pass(env, op);
  auto attention = scoresArg(info, 0, op);
  const size_t floats = static_cast<size_t>(p.rows()) * static_cast<size_t>(engine_->config().modelDim);
  if (attention.ElementLength() != floats) {
    throw Napi::RangeError::New(env, argName(op, 0) + " must hold rows x modelDim = " + std::to_string(floats) +
                                         " floats, got " + std::to_string(attention.ElementLength()));
  }
  if (!p.projected()) throw Napi::Error::New(env, "finishLayer: the layer is not projected yet (call project first)");
  std::memcpy(p.attention(), attention.Data(), floats * sizeof(float));
  guarded(env, [&] { p.finishLayer(); });
  return env.Undefined();
}

// passLogits() -> Float32Array: ends the pass.
Napi::Value EngineWrap::PassLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  engine::ForwardPass& p = pass(env, "passLogits");
  if (p.layer() < engine_->config().layers) {
    throw Napi::Error::New(env, "passLogits: layer " + std::to_string(p.layer()) + " of " +
                                    std::to_string(engine_->config().layers) + " has not run yet");
  }
  Napi::Float32Array logits = Napi::Float32Array::New(env, static_cast<size_t>(p.logitRows() * engine_->config().vocab));
  guarded(env, [&] { p.logits(logits.Data()); });
  pass_.reset();
  return logits;
}

// decodeAttention(layer, q: Float32Array, positions, tables, tableLengths) -> Float32Array
Napi::Value EngineWrap::DecodeAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "decodeAttention";
  checkPool(env, op);
  int32_t layer = int32Arg(info, 0, op, 0, engine_->config().layers - 1);
  auto q = scoresArg(info, 1, op);
  auto positions = idsArg(info, 2, op);
  auto tables = idsArg(info, 3, op);
  auto tableLengths = idsArg(info, 4, op);
  size_t batch = positions.ElementLength();
  size_t row = static_cast<size_t>(engine_->config().modelDim);
  if (tableLengths.ElementLength() != batch || q.ElementLength() != batch * row) {
    throw Napi::RangeError::New(env, "decodeAttention: q must hold one [heads][headDim] row per position, and tableLengths one entry per position");
  }
  std::vector<engine::BlockTableView> views(batch);
  size_t at = 0;
  for (size_t s = 0; s < batch; s++) {
    if (tableLengths[s] < 0 || at + static_cast<size_t>(tableLengths[s]) > tables.ElementLength()) {
      throw Napi::RangeError::New(env, "decodeAttention: tableLengths run past the tables array");
    }
    views[s] = {tables.Data() + at, tableLengths[s]};
    at += static_cast<size_t>(tableLengths[s]);
  }
  Napi::Float32Array out = Napi::Float32Array::New(env, q.ElementLength());
  guarded(env, [&] { engine_->decodeAttention(layer, views, positions.Data(), q.Data(), out.Data()); });
  return out;
}

// info() -> { bytesPerBlock, blocks, threads, blas, attention }
Napi::Value EngineWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytesPerBlock", static_cast<double>(engine_->kv().layout.bytesPerBlock()));
  out.Set("blocks", engine_->kv().blocks);
  out.Set("threads", engine_->threads());
  out.Set("blas", engine::haveBlas());
  out.Set("attention", engine_->attention().name());
  return out;
}

}  // namespace cachesage::napi
