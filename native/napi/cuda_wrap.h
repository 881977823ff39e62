#pragma once

#include <napi.h>

#ifdef CACHESAGE_HAVE_CUDA
#include <stdexcept>
#include <string>

#include "napi_util.h"
#endif

namespace cachesage::napi {

// Adds the CUDA entry points to the module's exports:
//
//   cudaInfo() -> { built, available, reason, device }
//     built: the addon was compiled with CUDA (CACHESAGE_HAVE_CUDA);
//     available: a device can run this build's kernels (cudaAvailable());
//     reason: why not, when it cannot ('' when it can);
//     device: the device description when available, else ''.
//
// and, only in builds with CUDA, the classes over kernels/cuda/cuda_backend.h,
// one wrapper file each:
//
//   NativeCudaSurvival   (cuda_survival_wrap.h)
//   NativeCudaHitScorer  (cuda_hit_scoring_wrap.h)
//   NativeCudaDataPlane  (cuda_data_plane_wrap.h)
//
// Each class also has destroy(), which frees its device memory at once;
// later calls throw. Constructing a class where no device is available
// throws an Error that says why. Builds without CUDA export cudaInfo()
// alone, so callers test for the classes' presence.
void ExportCuda(Napi::Env env, Napi::Object exports);

#ifdef CACHESAGE_HAVE_CUDA

// ---------------------------------------- shared by the CUDA class wrappers

// A failing CUDA call (std::runtime_error from the backend) is a condition
// of the machine, such as device memory running out, not a bug: it becomes
// a plain Error with CUDA's message rather than an "internal error".
template <typename Body>
auto cudaGuarded(const Napi::Env& env, Body&& body) -> decltype(body()) {
  return guarded(env, [&]() -> decltype(body()) {
    try {
      return body();
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env, e.what());
    }
  });
}

// Throws "<className>: CUDA is not available: <why>" where no device can
// run this build's kernels.
void requireDevice(const Napi::Env& env, const char* className);

// The backend object of a wrapper, or an Error once destroy() has freed it.
template <typename Pointer>
auto& live(const Napi::Env& env, const Pointer& pointer, const char* className) {
  if (!pointer) throw Napi::Error::New(env, std::string(className) + " has been destroyed");
  return *pointer;
}

#endif  // CACHESAGE_HAVE_CUDA

}  // namespace cachesage::napi
