// Module entry: registers the native classes, the token hash, survival and
// hit-scoring functions, and the CUDA entry points (see cuda_wrap.h).
#include <napi.h>

#include "block_manager_wrap.h"
#include "cuda_wrap.h"
#include "data_plane_wrap.h"
#include "hit_scoring_wrap.h"
#include "napi_util.h"
#include "survival_wrap.h"
#include "token_hash.h"

namespace cachesage::napi {

namespace {

// hashTokenBlocks(tokens: Uint32Array, blockSize, parentHash: bigint) -> BigUint64Array
Napi::Value HashTokenBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* op = "hashTokenBlocks";
  auto tokens = typedArg<uint32_t, napi_uint32_array>(info, 0, op, "Uint32Array");
  int32_t blockSize = int32Arg(info, 1, op, 1, 1 << 20);
  Napi::Value parentValue = arg(info, 2);
  if (!parentValue.IsBigInt()) throw Napi::TypeError::New(env, argName(op, 2) + " must be a bigint");
  bool lossless = false;
  uint64_t parent = parentValue.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(env, argName(op, 2) + " must fit in 64 unsigned bits");
  size_t blocks = tokens.ElementLength() / static_cast<size_t>(blockSize);
  Napi::BigUint64Array out = Napi::BigUint64Array::New(env, blocks);
  hashTokenBlocks(tokens.Data(), static_cast<int64_t>(tokens.ElementLength()), blockSize, parent,
                  out.Data());
  return out;
}

}  // namespace

}  // namespace cachesage::napi

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  using namespace cachesage::napi;
  exports.Set("NativeBlockManager", BlockManagerWrap::Define(env));
  exports.Set("NativeCpuDataPlane", DataPlaneWrap::Define(env));
  exports.Set("hashTokenBlocks", Napi::Function::New<HashTokenBlocks>(env, "hashTokenBlocks"));
  exports.Set("computeSurvival", Napi::Function::New<ComputeSurvival>(env, "computeSurvival"));
  exports.Set("hitScoring", Napi::Function::New<HitScoring>(env, "hitScoring"));
  ExportCuda(env, exports);
  return exports;
}

NODE_API_MODULE(cachesage_native, InitModule)
