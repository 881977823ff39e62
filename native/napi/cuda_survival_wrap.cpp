#include "cuda_survival_wrap.h"

#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cuda_wrap.h"
#include "napi_util.h"
#include "survival.h"
#include "survival_wrap.h"

namespace cachesage::napi {

// The backend and the lock that keeps one computation at a time on it,
// shared with workers so it outlives a collected JS object.
struct SurvivalState {
  std::mutex mutex;
  CudaSurvival survival;
};

namespace {

// Checks the arguments of compute()/computeAsync() as computeSurvival()
// does, plus the device's state limit; the pointers are the JS arrays'.
SurvivalInputView survivalArgs(const Napi::CallbackInfo& info, const char* op,
                               int32_t maxStates) {
  const SurvivalInputView input = survivalInputArgs(info, op);
  if (input.shape.states > maxStates) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": states must be at most " +
                                                std::to_string(maxStates) +
                                                " on this device (shared memory), got " +
                                                std::to_string(input.shape.states));
  }
  return input;
}

// The three output arrays, allocated on the main thread. V8 never moves an
// ArrayBuffer's memory, so a worker may fill them while references keep
// them alive.
struct SurvivalOutputs {
  SurvivalOutputs(const Napi::Env& env, const SurvivalShape& shape)
      : reach(Napi::Float32Array::New(env, shape.reachSize())),
        alive(Napi::Float32Array::New(env, shape.aliveSize())),
        expectedSteps(Napi::Float32Array::New(env, shape.expectedStepsSize())) {}

  Napi::Object toObject(const Napi::Env& env) const {
    Napi::Object result = Napi::Object::New(env);
    result.Set("reach", reach);
    result.Set("alive", alive);
    result.Set("expectedSteps", expectedSteps);
    return result;
  }

  Napi::Float32Array reach, alive, expectedSteps;
};

class SurvivalWorker : public Napi::AsyncWorker {
 public:
  // Copies the input, so the caller may reuse its arrays at once.
  SurvivalWorker(const Napi::Env& env, std::shared_ptr<SurvivalState> state,
                 const SurvivalInputView& input)
      : Napi::AsyncWorker(env),
        state_(std::move(state)),
        shape_(input.shape),
        transitions_(input.transitions, input.transitions + input.transitionsLength),
        endState_(input.endState, input.endState + input.endStateLength),
        deferred_(Napi::Promise::Deferred::New(env)) {
    SurvivalOutputs outputs(env, shape_);
    reach_ = Napi::Persistent(outputs.reach);
    alive_ = Napi::Persistent(outputs.alive);
    expectedSteps_ = Napi::Persistent(outputs.expectedSteps);
    reachData_ = outputs.reach.Data();
    aliveData_ = outputs.alive.Data();
    expectedStepsData_ = outputs.expectedSteps.Data();
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      SurvivalInputView input;
      input.shape = shape_;
      input.transitions = transitions_.data();
      input.transitionsLength = transitions_.size();
      input.endState = endState_.data();
      input.endStateLength = endState_.size();
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->survival.compute(input, reachData_, aliveData_, expectedStepsData_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Object result = Napi::Object::New(Env());
    result.Set("reach", reach_.Value());
    result.Set("alive", alive_.Value());
    result.Set("expectedSteps", expectedSteps_.Value());
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  std::shared_ptr<SurvivalState> state_;
  SurvivalShape shape_;
  std::vector<float> transitions_;
  std::vector<int32_t> endState_;
  Napi::Reference<Napi::Float32Array> reach_, alive_, expectedSteps_;
  float* reachData_ = nullptr;
  float* aliveData_ = nullptr;
  float* expectedStepsData_ = nullptr;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

Napi::Function CudaSurvivalWrap::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {
                         InstanceMethod<&CudaSurvivalWrap::Compute>("compute"),
                         InstanceMethod<&CudaSurvivalWrap::ComputeAsync>("computeAsync"),
                         InstanceMethod<&CudaSurvivalWrap::MaxStates>("maxStates"),
                         InstanceMethod<&CudaSurvivalWrap::Destroy>("destroy"),
                     });
}

CudaSurvivalWrap::CudaSurvivalWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CudaSurvivalWrap>(info) {
  requireDevice(info.Env(), kName);
  state_ = cudaGuarded(info.Env(), [] { return std::make_shared<SurvivalState>(); });
}

// The host waits while a computeAsync() holds the backend.
Napi::Value CudaSurvivalWrap::Compute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SurvivalState& state = live(env, state_, kName);
  const SurvivalInputView input = survivalArgs(info, "compute", state.survival.maxStates());
  SurvivalOutputs outputs(env, input.shape);
  cudaGuarded(env, [&] {
    std::lock_guard<std::mutex> lock(state.mutex);
    state.survival.compute(input, outputs.reach.Data(), outputs.alive.Data(),
                           outputs.expectedSteps.Data());
  });
  return outputs.toObject(env);
}

// Refuses bad input synchronously; the computation runs off the main thread.
Napi::Value CudaSurvivalWrap::ComputeAsync(const Napi::CallbackInfo& info) {
  const SurvivalInputView input =
      survivalArgs(info, "computeAsync", live(info.Env(), state_, kName).survival.maxStates());
  auto* worker = new SurvivalWorker(info.Env(), state_, input);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value CudaSurvivalWrap::MaxStates(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), live(info.Env(), state_, kName).survival.maxStates());
}

// Frees the device buffers now rather than at collection; a running
// computeAsync() keeps them until it settles.
Napi::Value CudaSurvivalWrap::Destroy(const Napi::CallbackInfo& info) {
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace cachesage::napi
