// cudaInfo(), the helpers the CUDA class wrappers share, and ExportCuda(),
// which registers the classes in builds with CUDA (see cuda_wrap.h).
#include "cuda_wrap.h"

#include <exception>
#include <string>

#ifdef CACHESAGE_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_data_plane_wrap.h"
#include "cuda_hit_scoring_wrap.h"
#include "cuda_survival_wrap.h"
#endif

namespace cachesage::napi {

namespace {

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool built = false;
  bool available = false;
  std::string reason;
  std::string device;
#ifdef CACHESAGE_HAVE_CUDA
  built = true;
  try {
    available = cudaAvailable(&reason);
    if (available) device = cudaDeviceDescription();
  } catch (const std::exception& e) {
    available = false;
    reason = e.what();
  }
#else
  reason =
      "cachesage was built without CUDA (no CUDA compiler at build time, or "
      "-DCACHESAGE_CUDA=OFF)";
#endif
  Napi::Object result = Napi::Object::New(env);
  result.Set("built", built);
  result.Set("available", available);
  result.Set("reason", reason);
  result.Set("device", device);
  return result;
}

}  // namespace

#ifdef CACHESAGE_HAVE_CUDA
void requireDevice(const Napi::Env& env, const char* className) {
  std::string why;
  if (!cudaAvailable(&why)) {
    throw Napi::Error::New(env, std::string(className) + ": CUDA is not available: " + why);
  }
}
#endif

void ExportCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New<CudaInfo>(env, "cudaInfo"));
#ifdef CACHESAGE_HAVE_CUDA
  exports.Set("NativeCudaSurvival", CudaSurvivalWrap::Define(env));
  exports.Set("NativeCudaHitScorer", CudaHitScorerWrap::Define(env));
  exports.Set("NativeCudaDataPlane", CudaDataPlaneWrap::Define(env));
#endif
}

}  // namespace cachesage::napi
