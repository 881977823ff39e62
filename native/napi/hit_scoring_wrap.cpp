#include "hit_scoring_wrap.h"

#include <algorithm>
#include <string>
#include <vector>

#include "napi_util.h"

namespace cachesage::napi {

HitScoringArgs hitScoringArgs(const Napi::CallbackInfo& info, const char* op) {
  Napi::Env env = info.Env();
  auto tier = bytesArg(info, 0, op);
  auto committed = bytesArg(info, 1, op);
  auto refCount = idsArg(info, 2, op);
  auto deviceChildren = idsArg(info, 3, op);
  auto lastAccess = typedArg<double, napi_float64_array>(info, 4, op, "Float64Array");
  auto score = scoresArg(info, 5, op);
  auto scoreClass = idsArg(info, 6, op);
  auto classScores = scoresArg(info, 7, op);
  int32_t k = int32Arg(info, 8, op, 0);

  const int32_t blocks = lengthOf(tier, env, op);
  const int32_t classes = lengthOf(classScores, env, op);
  const std::pair<const char*, size_t> lengths[] = {
      {"committed", committed.ElementLength()},   {"refCount", refCount.ElementLength()},
      {"deviceChildren", deviceChildren.ElementLength()},
      {"lastAccess", lastAccess.ElementLength()}, {"score", score.ElementLength()},
      {"scoreClass", scoreClass.ElementLength()},
  };
  for (const auto& [name, length] : lengths) {
    if (length != static_cast<size_t>(blocks)) {
      throw Napi::RangeError::New(env, std::string(op) + ": " + name + " has length " +
                                           std::to_string(length) + ", expected " +
                                           std::to_string(blocks) + " (one per block id)");
    }
  }

  HitScoringArgs args;
  args.input.blocks = blocks;
  args.input.tier = tier.Data();
  args.input.committed = committed.Data();
  args.input.refCount = refCount.Data();
  args.input.deviceChildren = deviceChildren.Data();
  args.input.lastAccess = lastAccess.Data();
  args.input.score = score.Data();
  args.input.scoreClass = scoreClass.Data();
  args.input.classScore = classScores.Data();
  args.input.classes = classes;
  args.k = std::min(k, blocks);
  return args;
}

Napi::Value HitScoring(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HitScoringArgs args = hitScoringArgs(info, "hitScoring");
  Napi::Float32Array scores = Napi::Float32Array::New(env, static_cast<size_t>(args.input.blocks));
  std::vector<int32_t> victims(static_cast<size_t>(args.k));
  const int32_t count = guarded(env, [&] {
    return selectVictims(args.input, args.k, victims.data(), scores.Data());
  });
  victims.resize(static_cast<size_t>(count));

  Napi::Object result = Napi::Object::New(env);
  result.Set("scores", scores);
  result.Set("victims", copyOut<Napi::Int32Array>(env, victims));
  return result;
}

}  // namespace cachesage::napi
