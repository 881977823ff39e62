#pragma once

#include <napi.h>

#include <memory>

#include "data_plane.h"

namespace cachesage::napi {

// JS class `NativeCpuDataPlane`: real device and host pools, and the batched
// copy that executes copy plans, synchronously or off the main thread.
class DataPlaneWrap : public Napi::ObjectWrap<DataPlaneWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit DataPlaneWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Execute(const Napi::CallbackInfo& info);
  Napi::Value ExecuteAsync(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value DevicePool(const Napi::CallbackInfo& info);

  std::shared_ptr<CpuDataPlane> plane_;
  Napi::Reference<Napi::ArrayBuffer> devicePool_;  // one buffer per pool, made on first use
};

}  // namespace cachesage::napi
