// Module entry: registers the native classes, the token hash, the XXH64
// checksum, survival and hit-scoring functions, the CUDA entry points (see
// cuda_wrap.h) and the stderr mute that keeps third-party libraries'
// start-up chatter quiet.
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include "block_manager_wrap.h"
#include "checksum.h"
#include "cuda_wrap.h"
#include "data_plane_wrap.h"
#include "engine_wrap.h"
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
  uint64_t parent = uint64BigIntArg(info, 2, op);
  size_t blocks = tokens.ElementLength() / static_cast<size_t>(blockSize);
  Napi::BigUint64Array out = Napi::BigUint64Array::New(env, blocks);
  hashTokenBlocks(tokens.Data(), static_cast<int64_t>(tokens.ElementLength()), blockSize, parent,
                  out.Data());
  return out;
}

// xxh64(bytes: Uint8Array, seed: bigint) -> bigint
Napi::Value Xxh64(const Napi::CallbackInfo& info) {
  const char* op = "xxh64";
  auto bytes = typedArg<uint8_t, napi_uint8_array>(info, 0, op, "Uint8Array");
  uint64_t seed = uint64BigIntArg(info, 1, op);
  return Napi::BigInt::New(info.Env(), xxh64(bytes.Data(), bytes.ElementLength(), seed));
}

// How many muteStderr(true) calls are open, and where fd 2 pointed before
// the first one. Only the main JS thread calls these, so no lock.
int muteDepth = 0;
int savedStderr = -1;

// muteStderr(on: boolean) -> number (the depth after the call).
// Native libraries loaded beside the addon (Dawn's Vulkan loader above all)
// print warnings straight to file descriptor 2, which no JavaScript can
// silence; muting points fd 2 at /dev/null until the matching unmute.
// Calls nest; an unmute with nothing muted is a RangeError and changes
// nothing.
Napi::Value MuteStderr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Value flag = arg(info, 0);
  if (!flag.IsBoolean()) throw Napi::TypeError::New(env, argName("muteStderr", 0) + " must be a boolean");
  if (flag.As<Napi::Boolean>().Value()) {
    if (muteDepth == 0) {
      int saved = dup(STDERR_FILENO);
      int sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
      if (saved < 0 || sink < 0 || dup2(sink, STDERR_FILENO) < 0) {
        if (saved >= 0) close(saved);
        if (sink >= 0) close(sink);
        throw Napi::Error::New(env, "muteStderr: could not redirect file descriptor 2 to /dev/null");
      }
      close(sink);
      savedStderr = saved;
    }
    ++muteDepth;
  } else {
    if (muteDepth == 0) throw Napi::RangeError::New(env, "muteStderr(false): stderr is not muted");
    if (--muteDepth == 0) {
      dup2(savedStderr, STDERR_FILENO);
      close(savedStderr);
      savedStderr = -1;
    }
  }
  return Napi::Number::New(env, muteDepth);
}

}  // namespace

}  // namespace cachesage::napi

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  using namespace cachesage::napi;
  exports.Set("NativeBlockManager", BlockManagerWrap::Define(env));
  exports.Set("NativeCpuDataPlane", DataPlaneWrap::Define(env));
  exports.Set("NativeEngine", EngineWrap::Define(env));
  exports.Set("hashTokenBlocks", Napi::Function::New<HashTokenBlocks>(env, "hashTokenBlocks"));
  exports.Set("xxh64", Napi::Function::New<Xxh64>(env, "xxh64"));
  exports.Set("computeSurvival", Napi::Function::New<ComputeSurvival>(env, "computeSurvival"));
  exports.Set("hitScoring", Napi::Function::New<HitScoring>(env, "hitScoring"));
  exports.Set("muteStderr", Napi::Function::New<MuteStderr>(env, "muteStderr"));
  ExportCuda(env, exports);
  return exports;
}

NODE_API_MODULE(cachesage_native, InitModule)
