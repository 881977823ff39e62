#include "cuda_hit_scoring_wrap.h"

#include <exception>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda_wrap.h"
#include "hit_scoring.h"
#include "hit_scoring_wrap.h"
#include "napi_util.h"

namespace cachesage::napi {

// The backend and the lock that keeps one selection at a time on it, shared
// with workers so it outlives a collected JS object.
struct HitScorerState {
  std::mutex mutex;
  CudaHitScorer scorer;
};

namespace {

// The CPU scorer with k = 0 checks class indices and effective scores with
// the messages the CUDA scorer uses, so bad input is refused before any
// upload.
void checkScores(const Napi::Env& env, const HitScoringInput& input) {
  guarded(env, [&] { selectVictims(input, 0, nullptr, nullptr); });
}

class HitScoringWorker : public Napi::AsyncWorker {
 public:
  // Copies the input, so the caller may reuse its arrays at once.
  HitScoringWorker(const Napi::Env& env, std::shared_ptr<HitScorerState> state,
                   const HitScoringArgs& args)
      : Napi::AsyncWorker(env),
        state_(std::move(state)),
        k_(args.k),
        victims_(static_cast<size_t>(args.k)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    const HitScoringInput& in = args.input;
    const size_t n = static_cast<size_t>(in.blocks);
    tier_.assign(in.tier, in.tier + n);
    committed_.assign(in.committed, in.committed + n);
    refCount_.assign(in.refCount, in.refCount + n);
    deviceChildren_.assign(in.deviceChildren, in.deviceChildren + n);
    lastAccess_.assign(in.lastAccess, in.lastAccess + n);
    score_.assign(in.score, in.score + n);
    scoreClass_.assign(in.scoreClass, in.scoreClass + n);
    classScore_.assign(in.classScore, in.classScore + static_cast<size_t>(in.classes));
    Napi::Float32Array scores = Napi::Float32Array::New(env, n);
    scores_ = Napi::Persistent(scores);
    scoresData_ = scores.Data();
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      HitScoringInput input;
      input.blocks = static_cast<int32_t>(tier_.size());
      input.tier = tier_.data();
      input.committed = committed_.data();
      input.refCount = refCount_.data();
      input.deviceChildren = deviceChildren_.data();
      input.lastAccess = lastAccess_.data();
      input.score = score_.data();
      input.scoreClass = scoreClass_.data();
      input.classScore = classScore_.data();
      input.classes = static_cast<int32_t>(classScore_.size());
      std::lock_guard<std::mutex> lock(state_->mutex);
      const int32_t count = state_->scorer.selectVictims(input, k_, victims_.data(), scoresData_);
      victims_.resize(static_cast<size_t>(count));
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Object result = Napi::Object::New(Env());
    result.Set("scores", scores_.Value());
    result.Set("victims", copyOut<Napi::Int32Array>(Env(), victims_));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  std::shared_ptr<HitScorerState> state_;
  std::vector<uint8_t> tier_, committed_;
  std::vector<int32_t> refCount_, deviceChildren_, scoreClass_;
  std::vector<double> lastAccess_;
  std::vector<float> score_, classScore_;
  int32_t k_;
  std::vector<int32_t> victims_;
  Napi::Reference<Napi::Float32Array> scores_;
  float* scoresData_ = nullptr;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

Napi::Function CudaHitScorerWrap::Define(Napi::Env env) {
  return DefineClass(env, kName,
                     {
                         InstanceMethod<&CudaHitScorerWrap::SelectVictims>("selectVictims"),
                         InstanceMethod<&CudaHitScorerWrap::SelectVictimsAsync>(
                             "selectVictimsAsync"),
                         InstanceMethod<&CudaHitScorerWrap::Destroy>("destroy"),
                     });
}

CudaHitScorerWrap::CudaHitScorerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CudaHitScorerWrap>(info) {
  requireDevice(info.Env(), kName);
  state_ = cudaGuarded(info.Env(), [] { return std::make_shared<HitScorerState>(); });
}

Napi::Value CudaHitScorerWrap::SelectVictims(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HitScorerState& state = live(env, state_, kName);
  const HitScoringArgs args = hitScoringArgs(info, "selectVictims");
  checkScores(env, args.input);
  Napi::Float32Array scores =
      Napi::Float32Array::New(env, static_cast<size_t>(args.input.blocks));
  std::vector<int32_t> victims(static_cast<size_t>(args.k));
  const int32_t count = cudaGuarded(env, [&] {
    std::lock_guard<std::mutex> lock(state.mutex);
    return state.scorer.selectVictims(args.input, args.k, victims.data(), scores.Data());
  });
  victims.resize(static_cast<size_t>(count));
  Napi::Object result = Napi::Object::New(env);
  result.Set("scores", scores);
  result.Set("victims", copyOut<Napi::Int32Array>(env, victims));
  return result;
}

Napi::Value CudaHitScorerWrap::SelectVictimsAsync(const Napi::CallbackInfo& info) {
  live(info.Env(), state_, kName);
  const HitScoringArgs args = hitScoringArgs(info, "selectVictimsAsync");
  checkScores(info.Env(), args.input);
  auto* worker = new HitScoringWorker(info.Env(), state_, args);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// Frees the device buffers now; a running selectVictimsAsync() keeps them
// until it settles.
Napi::Value CudaHitScorerWrap::Destroy(const Napi::CallbackInfo& info) {
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace cachesage::napi
