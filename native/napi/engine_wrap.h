#pragma once

#include <napi.h>

#include <memory>

#include "engine.h"

namespace cachesage::napi {

// JS class `NativeEngine`: the reference decoder (native/engine) computing
// on a KV pool it borrows as an ArrayBuffer (the CPU data plane's device
// pool), which it keeps alive.
class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value DecodeAttention(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  std::unique_ptr<engine::Engine> engine_;
  Napi::Reference<Napi::ArrayBuffer> pool_;
};

}  // namespace cachesage::napi
