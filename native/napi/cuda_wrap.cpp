#include "cuda_wrap.h"

#include <exception>
#include <string>

#include "napi_util.h"
#include "survival_wrap.h"

#ifdef CACHESAGE_HAVE_CUDA
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "cuda_backend.h"
#include "hit_scoring_wrap.h"
#include "survival.h"
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

#ifdef CACHESAGE_HAVE_CUDA

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

void requireDevice(const Napi::Env& env, const char* className) {
  std::string why;
  if (!cudaAvailable(&why)) {
    throw Napi::Error::New(env, std::string(className) + ": CUDA is not available: " + why);
  }
}

// The backend object of a wrapper, or an Error once destroy() has freed it.
template <typename Pointer>
auto& live(const Napi::Env& env, const Pointer& pointer, const char* className) {
  if (!pointer) throw Napi::Error::New(env, std::string(className) + " has been destroyed");
  return *pointer;
}

// ------------------------------------------------------------ survival

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

// The backend and the lock that keeps one computation at a time on it,
// shared with workers so it outlives a collected JS object.
struct SurvivalState {
  std::mutex mutex;
  CudaSurvival survival;
};

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

// JS class `NativeCudaSurvival`: computeSurvival() on the device.
class CudaSurvivalWrap : public Napi::ObjectWrap<CudaSurvivalWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, kName,
                       {
                           InstanceMethod<&CudaSurvivalWrap::Compute>("compute"),
                           InstanceMethod<&CudaSurvivalWrap::ComputeAsync>("computeAsync"),
                           InstanceMethod<&CudaSurvivalWrap::MaxStates>("maxStates"),
                           InstanceMethod<&CudaSurvivalWrap::Destroy>("destroy"),
                       });
  }

  explicit CudaSurvivalWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CudaSurvivalWrap>(info) {
    requireDevice(info.Env(), kName);
    state_ = cudaGuarded(info.Env(), [] { return std::make_shared<SurvivalState>(); });
  }

 private:
  // The host waits while a computeAsync() holds the backend.
  Napi::Value Compute(const Napi::CallbackInfo& info) {
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
  Napi::Value ComputeAsync(const Napi::CallbackInfo& info) {
    const SurvivalInputView input =
        survivalArgs(info, "computeAsync", live(info.Env(), state_, kName).survival.maxStates());
    auto* worker = new SurvivalWorker(info.Env(), state_, input);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  Napi::Value MaxStates(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live(info.Env(), state_, kName).survival.maxStates());
  }

  // Frees the device buffers now rather than at collection; a running
  // computeAsync() keeps them until it settles.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  static constexpr const char* kName = "NativeCudaSurvival";
  std::shared_ptr<SurvivalState> state_;
};

// --------------------------------------------------------- hit scoring

struct HitScorerState {
  std::mutex mutex;
  CudaHitScorer scorer;
};

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

// JS class `NativeCudaHitScorer`: hit scoring and victim selection on the
// device.
class CudaHitScorerWrap : public Napi::ObjectWrap<CudaHitScorerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, kName,
                       {
                           InstanceMethod<&CudaHitScorerWrap::SelectVictims>("selectVictims"),
                           InstanceMethod<&CudaHitScorerWrap::SelectVictimsAsync>(
                               "selectVictimsAsync"),
                           InstanceMethod<&CudaHitScorerWrap::Destroy>("destroy"),
                       });
  }

  explicit CudaHitScorerWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CudaHitScorerWrap>(info) {
    requireDevice(info.Env(), kName);
    state_ = cudaGuarded(info.Env(), [] { return std::make_shared<HitScorerState>(); });
  }

 private:
  Napi::Value SelectVictims(const Napi::CallbackInfo& info) {
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

  Napi::Value SelectVictimsAsync(const Napi::CallbackInfo& info) {
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
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  static constexpr const char* kName = "NativeCudaHitScorer";
  std::shared_ptr<HitScorerState> state_;
};

// ---------------------------------------------------------- data plane

// JS class `NativeCudaDataPlane`: the device pool in device memory, the host
// pool in pinned host memory, copy plans and prefetches on CUDA streams.
class CudaDataPlaneWrap : public Napi::ObjectWrap<CudaDataPlaneWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, kName,
                       {
                           InstanceMethod<&CudaDataPlaneWrap::Execute>("execute"),
                           InstanceMethod<&CudaDataPlaneWrap::Prefetch>("prefetch"),
                           InstanceMethod<&CudaDataPlaneWrap::WaitForPrefetch>("waitForPrefetch"),
                           InstanceMethod<&CudaDataPlaneWrap::PrefetchComplete>("prefetchComplete"),
                           InstanceMethod<&CudaDataPlaneWrap::Synchronize>("synchronize"),
                           InstanceMethod<&CudaDataPlaneWrap::Write>("write"),
                           InstanceMethod<&CudaDataPlaneWrap::Read>("read"),
                           InstanceMethod<&CudaDataPlaneWrap::Destroy>("destroy"),
                       });
  }

  // new NativeCudaDataPlane(bytesPerBlock, deviceBlocks, hostBlocks)
  explicit CudaDataPlaneWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CudaDataPlaneWrap>(info) {
    const double bytesPerBlock = numberArg(info, 0, kName, 1, kMaxSafeInteger);
    const int32_t deviceBlocks = int32Arg(info, 1, kName, 1);
    const int32_t hostBlocks = int32Arg(info, 2, kName, 0);
    requireDevice(info.Env(), kName);
    plane_ = cudaGuarded(info.Env(), [&] {
      return std::make_unique<CudaDataPlane>(static_cast<int64_t>(bytesPerBlock), deviceBlocks,
                                             hostBlocks);
    });
  }

 private:
  static constexpr const char* kName = "NativeCudaDataPlane";

  CudaDataPlane& plane(const Napi::CallbackInfo& info) const {
    return live(info.Env(), plane_, kName);
  }

  // execute(srcTier, srcSlot, dstTier, dstSlot, stageStarts): an empty
  // stageStarts lets the plane split the plan into stages itself.
  Napi::Value Execute(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CudaDataPlane& target = plane(info);
    const char* op = "execute";
    auto srcTier = bytesArg(info, 0, op);
    auto srcSlot = idsArg(info, 1, op);
    auto dstTier = bytesArg(info, 2, op);
    auto dstSlot = idsArg(info, 3, op);
    auto stageStarts = idsArg(info, 4, op);
    const size_t n = srcSlot.ElementLength();
    if (srcTier.ElementLength() != n || dstTier.ElementLength() != n ||
        dstSlot.ElementLength() != n) {
      throw Napi::RangeError::New(env, std::string(op) + ": copy plan arrays differ in length");
    }
    const CopyPlanView view{srcTier.Data(), srcSlot.Data(), dstTier.Data(), dstSlot.Data(),
                            lengthOf(srcSlot, env, op)};
    const int32_t stageCount = lengthOf(stageStarts, env, op);
    guarded(env, [&] { target.validate(view); });
    // The plane copies the lists before returning, so the arrays may change
    // while the copies are still queued.
    cudaGuarded(env, [&] {
      target.execute(view, stageCount > 0 ? stageStarts.Data() : nullptr, stageCount);
    });
    return env.Undefined();
  }

  // prefetch(hostSlots, deviceSlots): host -> device copies on the prefetch
  // stream.
  Napi::Value Prefetch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CudaDataPlane& target = plane(info);
    const char* op = "prefetch";
    auto hostSlots = idsArg(info, 0, op);
    auto deviceSlots = idsArg(info, 1, op);
    if (hostSlots.ElementLength() != deviceSlots.ElementLength()) {
      throw Napi::RangeError::New(env,
                                  std::string(op) + ": hostSlots and deviceSlots differ in length");
    }
    const int32_t count = lengthOf(hostSlots, env, op);
    cudaGuarded(env, [&] { target.prefetch(hostSlots.Data(), deviceSlots.Data(), count); });
    return env.Undefined();
  }

  Napi::Value WaitForPrefetch(const Napi::CallbackInfo& info) {
    CudaDataPlane& target = plane(info);
    cudaGuarded(info.Env(), [&] { target.waitForPrefetch(); });
    return info.Env().Undefined();
  }

  Napi::Value PrefetchComplete(const Napi::CallbackInfo& info) {
    CudaDataPlane& target = plane(info);
    return Napi::Boolean::New(info.Env(),
                              cudaGuarded(info.Env(), [&] { return target.prefetchComplete(); }));
  }

  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    CudaDataPlane& target = plane(info);
    cudaGuarded(info.Env(), [&] { target.synchronize(); });
    return info.Env().Undefined();
  }

  // (tier, slot) arguments 0 and 1, checked against the pool sizes.
  static int32_t slotArg(const Napi::CallbackInfo& info, const CudaDataPlane& target, Tier* tier,
                         const char* op) {
    *tier = static_cast<Tier>(int32Arg(info, 0, op, 1, 2));
    const int32_t limit = target.blocks(*tier);
    if (limit == 0) {
      throw Napi::RangeError::New(info.Env(), std::string(op) + ": the tier has no blocks");
    }
    return int32Arg(info, 1, op, 0, limit - 1);
  }

  static size_t offsetOf(const CudaDataPlane& target, int32_t slot) {
    return static_cast<size_t>(slot) * static_cast<size_t>(target.bytesPerBlock());
  }

  // write(tier, slot, bytes): bytes.length must equal bytesPerBlock. Runs
  // after the queued copies that may use the block.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CudaDataPlane& target = plane(info);
    Tier tier;
    const int32_t slot = slotArg(info, target, &tier, "write");
    auto bytes = bytesArg(info, 2, "write");
    const size_t size = static_cast<size_t>(target.bytesPerBlock());
    if (bytes.ElementLength() != size) {
      throw Napi::RangeError::New(env, "write: expected " + std::to_string(size) +
                                           " bytes, got " + std::to_string(bytes.ElementLength()));
    }
    cudaGuarded(env, [&] {
      if (tier == Tier::Device) {
        target.writeDevice(offsetOf(target, slot), bytes.Data(), size);
      } else {
        // Queued copies may read or write the host pool.
        target.synchronize();
        std::memcpy(target.hostPool() + offsetOf(target, slot), bytes.Data(), size);
      }
    });
    return env.Undefined();
  }

  // read(tier, slot) -> a copy of the block, after the queued copies.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CudaDataPlane& target = plane(info);
    Tier tier;
    const int32_t slot = slotArg(info, target, &tier, "read");
    const size_t size = static_cast<size_t>(target.bytesPerBlock());
    Napi::Uint8Array out = Napi::Uint8Array::New(env, size);
    cudaGuarded(env, [&] {
      if (tier == Tier::Device) {
        // Ordered after the queued copies, and after the prefetches.
        target.readDevice(offsetOf(target, slot), out.Data(), size);
      } else {
        target.synchronize();
        std::memcpy(out.Data(), target.hostPool() + offsetOf(target, slot), size);
      }
    });
    return out;
  }

  // Frees the pools now (after the queued copies) rather than at collection.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    plane_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<CudaDataPlane> plane_;
};

#endif  // CACHESAGE_HAVE_CUDA

}  // namespace

void ExportCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New<CudaInfo>(env, "cudaInfo"));
#ifdef CACHESAGE_HAVE_CUDA
  exports.Set("NativeCudaSurvival", CudaSurvivalWrap::Define(env));
  exports.Set("NativeCudaHitScorer", CudaHitScorerWrap::Define(env));
  exports.Set("NativeCudaDataPlane", CudaDataPlaneWrap::Define(env));
#endif
}

}  // namespace cachesage::napi
