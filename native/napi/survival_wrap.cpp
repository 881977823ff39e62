#include "survival_wrap.h"

#include "napi_util.h"
#include "survival.h"

namespace cachesage::napi {

SurvivalInputView survivalInputArgs(const Napi::CallbackInfo& info, const char* op) {
  SurvivalShape shape;
  shape.workloads = int32Arg(info, 0, op, 1, kMaxSurvivalWorkloads);
  shape.states = int32Arg(info, 1, op, 1, kMaxSurvivalStates);
  shape.horizon = int32Arg(info, 2, op, 1, kMaxSurvivalHorizon);
  auto transitions = scoresArg(info, 3, op);
  auto endState = idsArg(info, 4, op);
  SurvivalInputView input;
  input.shape = shape;
  input.transitions = transitions.Data();
  input.transitionsLength = transitions.ElementLength();
  input.endState = endState.Data();
  input.endStateLength = endState.ElementLength();
  guarded(info.Env(), [&] { validateSurvivalInput(input); });
  return input;
}

Napi::Value ComputeSurvival(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Refuse bad input before allocating outputs that may be a gigabyte.
  const SurvivalInputView input = survivalInputArgs(info, "computeSurvival");
  const SurvivalShape& shape = input.shape;
  Napi::Float32Array reach = Napi::Float32Array::New(env, shape.reachSize());
  Napi::Float32Array alive = Napi::Float32Array::New(env, shape.aliveSize());
  Napi::Float32Array expectedSteps = Napi::Float32Array::New(env, shape.expectedStepsSize());
  guarded(env, [&] { computeSurvival(input, reach.Data(), alive.Data(), expectedSteps.Data()); });

  Napi::Object result = Napi::Object::New(env);
  result.Set("reach", reach);
  result.Set("alive", alive);
  result.Set("expectedSteps", expectedSteps);
  return result;
}

}  // namespace cachesage::napi
