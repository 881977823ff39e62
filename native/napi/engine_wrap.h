#pragma once

#include <napi.h>

#include <memory>

#include "engine.h"

namespace cachesage::napi {

// JS class `NativeEngine`: the reference decoder (native/engine) over a KV
// pool that is one of
//   - an ArrayBuffer (the CPU data plane's device pool), which it keeps
//     alive, attended by the CPU kernels;
//   - a NativeCudaDataPlane (CUDA builds), whose device pool it computes in
//     with the CUDA kernels, keeping the pool alive past the plane's destroy();
//   - a block count: a pool this process cannot address (a WebGPU buffer);
//     forward() refuses, and the caller drives a pass layer by layer
//     (beginPass, project, finishLayer, passLogits), attending where the
//     pool is.
class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value BeginPass(const Napi::CallbackInfo& info);
  Napi::Value Project(const Napi::CallbackInfo& info);
  Napi::Value FinishLayer(const Napi::CallbackInfo& info);
  Napi::Value PassLogits(const Napi::CallbackInfo& info);
  Napi::Value DecodeAttention(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  void checkPool(const Napi::Env& env, const char* op) const;
  engine::ForwardPass& pass(const Napi::Env& env, const char* op);

  std::unique_ptr<engine::Engine> engine_;
  // What keeps the pool's memory alive: the ArrayBuffer, or the CUDA plane.
  Napi::Reference<Napi::ArrayBuffer> pool_;
  std::shared_ptr<void> devicePlane_;
  std::unique_ptr<engine::ForwardPass> pass_;
};

}  // namespace cachesage::napi
