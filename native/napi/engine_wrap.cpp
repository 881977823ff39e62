#include "engine_wrap.h"

#include <string>
#include <vector>

#include "dense.h"
#include "napi_util.h"

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

}  // namespace

Napi::Function EngineWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeEngine",
                     {
                         InstanceMethod<&EngineWrap::Forward>("forward"),
                         InstanceMethod<&EngineWrap::DecodeAttention>("decodeAttention"),
                         InstanceMethod<&EngineWrap::Info>("info"),
                     });
}

// new NativeEngine(config, blockSize, pool: ArrayBuffer, threads, seed, weightsPath: string | null)
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
  if (!arg(info, 2).IsArrayBuffer()) throw Napi::TypeError::New(env, argName(op, 2) + " must be an ArrayBuffer");
  Napi::ArrayBuffer pool = arg(info, 2).As<Napi::ArrayBuffer>();
  int32_t threads = int32Arg(info, 3, op, 1, 1024);
  double seed = numberArg(info, 4, op, 0, kMaxSafeInteger);
  Napi::Value path = arg(info, 5);
  if (!path.IsNull() && !path.IsString()) throw Napi::TypeError::New(env, argName(op, 5) + " must be a string or null");
  engine_ = guarded(env, [&] {
    engine::validateConfig(config);
    engine::Weights weights = path.IsString() ? engine::loadSafetensors(config, path.As<Napi::String>().Utf8Value())
                                              : engine::randomWeights(config, static_cast<uint64_t>(seed));
    return std::make_unique<engine::Engine>(config, std::move(weights), blockSize, pool.Data(),
                                            static_cast<int64_t>(pool.ByteLength()), threads);
  });
  pool_ = Napi::Persistent(pool);
}

// forward(tokens, counts, starts, writeFrom, tables, tableLengths, allLogits) -> Float32Array
// Chunk s owns counts[s] consecutive entries of `tokens` and tableLengths[s]
// consecutive entries of `tables`.
Napi::Value EngineWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "forward";
  // The engine computes in the pool's memory, which the ArrayBuffer owns: a
  // transfer detaches it (the memory then goes with the new buffer, and is
  // freed with it) and shrinking a resizable buffer releases its pages.
  // Touch it only while it is still where, and as large as, it was.
  Napi::ArrayBuffer pool = pool_.Value();
  const engine::PagedKv& kv = engine_->kv();
  if (pool.Data() != static_cast<void*>(kv.base) ||
      static_cast<int64_t>(pool.ByteLength()) < static_cast<int64_t>(kv.blocks) * kv.layout.bytesPerBlock()) {
    throw Napi::Error::New(env, "forward: the KV pool's ArrayBuffer was transferred or shrunk since the engine was made");
  }
  auto tokens = idsArg(info, 0, op);
  auto counts = idsArg(info, 1, op);
  auto starts = idsArg(info, 2, op);
  auto writeFrom = idsArg(info, 3, op);
  auto tables = idsArg(info, 4, op);
  auto tableLengths = idsArg(info, 5, op);
  if (!arg(info, 6).IsBoolean()) throw Napi::TypeError::New(env, argName(op, 6) + " must be a boolean");
  bool allLogits = arg(info, 6).As<Napi::Boolean>().Value();
  size_t n = counts.ElementLength();
  if (starts.ElementLength() != n || writeFrom.ElementLength() != n || tableLengths.ElementLength() != n) {
    throw Napi::RangeError::New(env, "forward: counts, starts, writeFrom and tableLengths differ in length");
  }
  std::vector<engine::SequenceChunk> batch(n);
  size_t token = 0, table = 0;
  for (size_t s = 0; s < n; s++) {
    if (counts[s] < 1 || tableLengths[s] < 0) throw Napi::RangeError::New(env, "forward: bad count or table length");
    batch[s].tokens = tokens.Data() + token;
    batch[s].count = counts[s];
    batch[s].start = starts[s];
    batch[s].writeFrom = writeFrom[s];
    batch[s].table = {tables.Data() + table, tableLengths[s]};
    token += static_cast<size_t>(counts[s]);
    table += static_cast<size_t>(tableLengths[s]);
    if (token > tokens.ElementLength() || table > tables.ElementLength()) {
      throw Napi::RangeError::New(env, "forward: chunk " + std::to_string(s) + " runs past the tokens or tables array");
    }
  }
  if (token != tokens.ElementLength() || table != tables.ElementLength()) {
    throw Napi::RangeError::New(env, "forward: the counts and table lengths do not add up to the arrays' lengths");
  }
  int64_t rows = engine::Engine::logitRows(batch, allLogits);
  Napi::Float32Array logits = Napi::Float32Array::New(env, static_cast<size_t>(rows * engine_->config().vocab));
  guarded(env, [&] { engine_->forward(batch, allLogits, logits.Data()); });
  return logits;
}

// decodeAttention(layer, q: Float32Array, positions, tables, tableLengths) -> Float32Array
Napi::Value EngineWrap::DecodeAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "decodeAttention";
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

// info() -> { bytesPerBlock, blocks, threads, blas }
Napi::Value EngineWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytesPerBlock", static_cast<double>(engine_->kv().layout.bytesPerBlock()));
  out.Set("blocks", engine_->kv().blocks);
  out.Set("threads", engine_->threads());
  out.Set("blas", engine::haveBlas());
  return out;
}

}  // namespace cachesage::napi
