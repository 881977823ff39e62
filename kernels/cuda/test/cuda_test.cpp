// Holds every CUDA kernel to the CPU code on fresh random inputs: identical
// bytes for block copies and appended K/V, identical ids for victim
// selection, for survival |cuda - cpu| <= max(1e-6, 1e-5 |cpu|), the
// tolerance the TypeScript tests hold the native survival code to, and for
// paged attention |cuda - reference| <= 1e-5 (1 + |reference|) against the
// engine's dense referenceAttention.
//
// Usage: cachesage_cuda_test [seed]. Exits 0 with a "skipped" line when no
// CUDA device can run the kernels, 1 on any mismatch.
//
// Longer than ~400 lines on purpose: one program for every kernel, one
// section each (block copy, hit scoring, survival, paged attention), sharing the check
// counters, the random inputs and the no-device skip in main(), so a CUDA
// build has one test binary to run (test/cuda.test.ts runs it).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention.h"
#include "block_manager.h"
#include "cuda_backend.h"
#include "data_plane.h"
#include "eviction_queue.h"
#include "random_survival.h"
#include "survival.h"

namespace cachesage {
namespace {

int checks = 0;
int failures = 0;

void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

template <typename Exception>
void expectThrows(const std::function<void()>& call, const std::string& what) {
  try {
    call();
  } catch (const Exception&) {
    expect(true, what);
    return;
  } catch (const std::exception& error) {
    expect(false, what + ": threw the wrong exception: " + error.what());
    return;
  }
  expect(false, what + ": did not throw");
}

using Random = std::mt19937_64;

int32_t uniformInt(Random& random, int32_t low, int32_t high) {  // [low, high]
  return std::uniform_int_distribution<int32_t>(low, high)(random);
}

double uniformReal(Random& random) { return std::uniform_real_distribution<double>(0, 1)(random); }

std::vector<uint8_t> randomBytes(Random& random, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  for (uint8_t& byte : out) byte = static_cast<uint8_t>(random());
  return out;
}

// ------------------------------------------------------------ block copy

// The CUDA pools and their CPU twin, filled with the same random bytes.
struct Pools {
  CudaDataPlane gpu;
  CpuDataPlane cpu;

  Pools(Random& random, int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks)
      : gpu(bytesPerBlock, deviceBlocks, hostBlocks), cpu(bytesPerBlock, deviceBlocks, hostBlocks) {
    const size_t deviceBytes = static_cast<size_t>(bytesPerBlock) * deviceBlocks;
    const size_t hostBytes = static_cast<size_t>(bytesPerBlock) * hostBlocks;
    const std::vector<uint8_t> device = randomBytes(random, deviceBytes);
    const std::vector<uint8_t> host = randomBytes(random, hostBytes);
    if (deviceBytes > 0) std::memcpy(cpu.block(Tier::Device, 0), device.data(), deviceBytes);
    if (hostBytes > 0) std::memcpy(cpu.block(Tier::Host, 0), host.data(), hostBytes);
    gpu.writeDevice(0, device.data(), deviceBytes);
    if (hostBytes > 0) std::memcpy(gpu.hostPool(), host.data(), hostBytes);
  }

  // Byte-for-byte comparison of both tiers, naming the first differing block.
  void compare(const std::string& what) {
    gpu.synchronize();
    const size_t bytesPerBlock = static_cast<size_t>(cpu.bytesPerBlock());
    const int32_t deviceBlocks = cpu.blocks(Tier::Device);
    std::vector<uint8_t> device(bytesPerBlock * static_cast<size_t>(deviceBlocks));
    gpu.readDevice(0, device.data(), device.size());
    for (int32_t slot = 0; slot < deviceBlocks; ++slot) {
      if (std::memcmp(device.data() + slot * bytesPerBlock, cpu.block(Tier::Device, slot),
                      bytesPerBlock) != 0) {
        expect(false, what + ": device slot " + std::to_string(slot) + " differs");
        return;
      }
    }
    for (int32_t slot = 0; slot < cpu.blocks(Tier::Host); ++slot) {
      if (std::memcmp(gpu.hostPool() + slot * bytesPerBlock, cpu.block(Tier::Host, slot),
                      bytesPerBlock) != 0) {
        expect(false, what + ": host slot " + std::to_string(slot) + " differs");
        return;
      }
    }
    expect(true, what);
  }
};

// The block manager's stage rule, computed independently of the backend.
std::vector<int32_t> stagesOf(const CopyPlan& plan, int32_t deviceBlocks, int32_t hostBlocks) {
  std::vector<int32_t> readStage(static_cast<size_t>(deviceBlocks + hostBlocks), -1);
  std::vector<int32_t> writeStage(readStage.size(), -1);
  std::vector<int32_t> starts;
  int32_t stage = -1;
  for (size_t i = 0; i < plan.size(); ++i) {
    const size_t src = plan.srcTier[i] == 1 ? plan.srcSlot[i] : deviceBlocks + plan.srcSlot[i];
    const size_t dst = plan.dstTier[i] == 1 ? plan.dstSlot[i] : deviceBlocks + plan.dstSlot[i];
    if (i == 0 || writeStage[src] == stage || readStage[dst] == stage ||
        writeStage[dst] == stage) {
      ++stage;
      starts.push_back(static_cast<int32_t>(i));
    }
    readStage[src] = stage;
    writeStage[dst] = stage;
  }
  return starts;
}

CopyPlan randomPlan(Random& random, int32_t copies, int32_t deviceBlocks, int32_t hostBlocks) {
  CopyPlan plan;
  for (int32_t i = 0; i < copies; ++i) {
    const uint8_t srcTier = hostBlocks > 0 && random() % 2 ? 2 : 1;
    const uint8_t dstTier = hostBlocks > 0 && random() % 2 ? 2 : 1;
    plan.srcTier.push_back(srcTier);
    plan.dstTier.push_back(dstTier);
    plan.srcSlot.push_back(uniformInt(random, 0, (srcTier == 1 ? deviceBlocks : hostBlocks) - 1));
    plan.dstSlot.push_back(uniformInt(random, 0, (dstTier == 1 ? deviceBlocks : hostBlocks) - 1));
  }
  plan.stageStarts = stagesOf(plan, deviceBlocks, hostBlocks);
  return plan;
}

CopyPlanView viewOf(const CopyPlan& plan) {
  return CopyPlanView{plan.srcTier.data(), plan.srcSlot.data(), plan.dstTier.data(),
                      plan.dstSlot.data(), static_cast<int32_t>(plan.size())};
}

void testRandomPlans(Random& random) {
  // Block sizes reach every access width: 16, 8, 4 and 1 bytes.
  const int64_t sizes[] = {4096, 48, 72, 4100, 4098, 2 * 1024 * 1024, 200 * 1024 + 16};
  for (const int64_t bytesPerBlock : sizes) {
    const bool large = bytesPerBlock >= 1024 * 1024;
    const int32_t deviceBlocks = large ? 9 : 37;
    const int32_t hostBlocks = large ? 7 : 23;
    Pools pools(random, bytesPerBlock, deviceBlocks, hostBlocks);
    for (int round = 0; round < 12; ++round) {
      const CopyPlan plan =
          randomPlan(random, uniformInt(random, 0, large ? 12 : 80), deviceBlocks, hostBlocks);
      pools.cpu.execute(plan);
      // Alternate given stages and stages the backend derives itself.
      if (round % 2 == 0) {
        pools.gpu.execute(plan);
      } else {
        pools.gpu.execute(viewOf(plan), nullptr, 0);
      }
      pools.compare("random plan, " + std::to_string(bytesPerBlock) + "-byte blocks, round " +
                    std::to_string(round) + " (" + std::to_string(plan.size()) + " copies, " +
                    std::to_string(plan.stageStarts.size()) + " stages)");
    }
  }
}

// Plans the block manager itself makes: demotions, loads and their stages.
void testManagerPlans(Random& random) {
  BlockManagerConfig config;
  config.blockSize = 4;
  config.bytesPerBlock = 4096 + 16;
  config.deviceBlocks = 16;
  config.hostBlocks = 24;
  BlockManager manager(config);
  Pools pools(random, config.bytesPerBlock, config.deviceBlocks, config.hostBlocks);
  int64_t requestId = 0;
  size_t copies = 0;
  for (int step = 0; step < 300; ++step) {
    const uint64_t family = static_cast<uint64_t>(uniformInt(random, 0, 9));
    const int32_t blocks = uniformInt(random, 1, 8);
    std::vector<uint64_t> hashes;
    for (int32_t b = 0; b < blocks; ++b) hashes.push_back(family * 1000 + static_cast<uint64_t>(b));
    const int32_t tokens = blocks * config.blockSize + uniformInt(random, 0, config.blockSize - 1);
    AdmitResult admitted;
    if (!manager.admit(++requestId, hashes.data(), blocks, tokens, RequestTags{}, admitted)) {
      continue;
    }
    manager.commit(requestId, blocks);
    manager.release(requestId);
    CopyPlan plan;
    manager.takeCopyPlan(plan);
    copies += plan.size();
    pools.cpu.execute(plan);
    pools.gpu.execute(plan);
  }
  pools.compare("block manager plans (" + std::to_string(copies) + " copies)");
  expect(copies > 0, "the block manager produced copies to check");
}

void testPrefetch(Random& random) {
  const int64_t bytesPerBlock = 64 * 1024;
  const int32_t deviceBlocks = 20;
  const int32_t hostBlocks = 12;
  Pools pools(random, bytesPerBlock, deviceBlocks, hostBlocks);
  for (int round = 0; round < 6; ++round) {
    // Copies queued before the prefetch, which it must follow.
    const CopyPlan before = randomPlan(random, 10, deviceBlocks, hostBlocks);
    pools.cpu.execute(before);
    pools.gpu.execute(before);

    std::vector<int32_t> deviceSlots(static_cast<size_t>(deviceBlocks));
    std::iota(deviceSlots.begin(), deviceSlots.end(), 0);
    std::shuffle(deviceSlots.begin(), deviceSlots.end(), random);
    deviceSlots.resize(static_cast<size_t>(uniformInt(random, 0, 8)));
    std::vector<int32_t> hostSlots;
    for (size_t i = 0; i < deviceSlots.size(); ++i) {
      hostSlots.push_back(uniformInt(random, 0, hostBlocks - 1));
    }
    const int32_t count = static_cast<int32_t>(deviceSlots.size());
    pools.gpu.prefetch(hostSlots.data(), deviceSlots.data(), count);
    copyBlocks(pools.cpu.block(Tier::Host, 0), pools.cpu.block(Tier::Device, 0),
               static_cast<size_t>(bytesPerBlock), hostSlots.data(), deviceSlots.data(), count);

    // Copies that read the prefetched blocks, ordered after them.
    pools.gpu.waitForPrefetch();
    CopyPlan after;
    for (int32_t i = 0; i < count; ++i) {
      after.srcTier.push_back(1);
      after.srcSlot.push_back(deviceSlots[static_cast<size_t>(i)]);
      after.dstTier.push_back(2);
      after.dstSlot.push_back(uniformInt(random, 0, hostBlocks - 1));
    }
    after.stageStarts = stagesOf(after, deviceBlocks, hostBlocks);
    pools.cpu.execute(after);
    pools.gpu.execute(after);
    pools.compare("prefetch round " + std::to_string(round) + " (" + std::to_string(count) +
                  " blocks)");
    expect(pools.gpu.prefetchComplete(), "prefetchComplete() after synchronize()");
  }
}

void testCopyBlocksCuda(Random& random) {
  const size_t bytesPerBlock = 32 * 1024;
  const int32_t blocks = 24;
  Pools pools(random, static_cast<int64_t>(bytesPerBlock), blocks, 0);
  std::vector<int32_t> slots(static_cast<size_t>(blocks));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), random);
  // Reads from the first half, writes to the second: one conflict-free stage.
  const std::vector<int32_t> src(slots.begin(), slots.begin() + blocks / 2);
  const std::vector<int32_t> dst(slots.begin() + blocks / 2, slots.end());
  CudaDeviceBuffer srcList(src.size() * sizeof(int32_t));
  CudaDeviceBuffer dstList(dst.size() * sizeof(int32_t));
  srcList.upload(src.data(), src.size() * sizeof(int32_t));
  dstList.upload(dst.data(), dst.size() * sizeof(int32_t));
  copyBlocksCuda(pools.gpu.devicePool(), pools.gpu.devicePool(), bytesPerBlock,
                 srcList.as<int32_t>(), dstList.as<int32_t>(), static_cast<int32_t>(src.size()));
  synchronizeCuda();
  copyBlocks(pools.cpu.block(Tier::Device, 0), pools.cpu.block(Tier::Device, 0), bytesPerBlock,
             src.data(), dst.data(), static_cast<int32_t>(src.size()));
  pools.compare("copyBlocksCuda over device index lists");
}

void testCopyErrors(Random& random) {
  Pools pools(random, 256, 4, 3);
  CopyPlan plan;
  plan.srcTier = {1, 2};
  plan.srcSlot = {0, 1};
  plan.dstTier = {2, 1};
  plan.dstSlot = {3, 2};  // host slot 3 is out of range
  plan.stageStarts = {0};
  expectThrows<std::out_of_range>([&] { pools.gpu.execute(plan); },
                                  "execute refuses an out-of-range slot");
  plan.dstSlot = {2, 2};
  plan.dstTier = {7, 1};
  expectThrows<std::out_of_range>([&] { pools.gpu.execute(plan); },
                                  "execute refuses an unknown tier");
  plan.dstTier = {2, 1};
  plan.srcTier = {1, 1};
  plan.srcSlot = {0, 2};
  plan.dstTier = {1, 1};
  plan.dstSlot = {1, 0};  // copy 1 writes device slot 0, which copy 0 reads
  expectThrows<std::invalid_argument>([&] { pools.gpu.execute(plan); },
                                      "execute refuses a stage whose copies conflict");
  plan.stageStarts = {1};
  expectThrows<std::invalid_argument>([&] { pools.gpu.execute(plan); },
                                      "execute refuses stages that do not start at 0");
  plan.stageStarts = {0, 1};
  pools.gpu.execute(plan);
  pools.cpu.execute(plan);
  pools.compare("the same plan in two stages runs after the refusals, which copied nothing");
  const int32_t hostSlots[] = {0, 1};
  const int32_t deviceSlots[] = {3, 3};
  expectThrows<std::invalid_argument>([&] { pools.gpu.prefetch(hostSlots, deviceSlots, 2); },
                                      "prefetch refuses a device slot written twice");
  const int32_t badDevice[] = {4};
  expectThrows<std::out_of_range>([&] { pools.gpu.prefetch(hostSlots, badDevice, 1); },
                                  "prefetch refuses an out-of-range device slot");
  pools.compare("refused prefetches copied nothing");
}

// ----------------------------------------------------------- hit scoring

struct Metadata {
  std::vector<uint8_t> tier, committed;
  std::vector<int32_t> refCount, deviceChildren, scoreClass;
  std::vector<double> lastAccess;
  std::vector<float> score, classScore;

  HitScoringInput input() const {
    HitScoringInput in;
    in.blocks = static_cast<int32_t>(tier.size());
    in.tier = tier.data();
    in.committed = committed.data();
    in.refCount = refCount.data();
    in.deviceChildren = deviceChildren.data();
    in.lastAccess = lastAccess.data();
    in.score = score.data();
    in.scoreClass = scoreClass.data();
    in.classScore = classScore.data();
    in.classes = static_cast<int32_t>(classScore.size());
    return in;
  }
};

// Few distinct scores and clock values, so most of the order comes from the
// tie-breaks; -0 and +0 both appear and must compare equal.
Metadata randomMetadata(Random& random, int32_t blocks, int32_t classes) {
  const float scores[] = {-0.0f, 0.0f, 0.25f, -1.5f, 3.0f, 1e-30f, -1e30f, 0.5f};
  Metadata m;
  for (int32_t i = 0; i < blocks; ++i) {
    const double roll = uniformReal(random);
    m.tier.push_back(roll < 0.7 ? 1 : roll < 0.9 ? 2 : 0);
    m.committed.push_back(uniformReal(random) < 0.9 ? 1 : 0);
    m.refCount.push_back(uniformReal(random) < 0.7 ? 0 : uniformInt(random, 1, 3));
    m.deviceChildren.push_back(uniformReal(random) < 0.6 ? 0 : uniformInt(random, 1, 2));
    const int32_t clock = uniformInt(random, 0, 40);
    m.lastAccess.push_back(clock == 0 && random() % 2 ? -0.0 : static_cast<double>(clock));
    m.score.push_back(scores[random() % 8]);
    m.scoreClass.push_back(classes > 0 && uniformReal(random) < 0.5
                               ? uniformInt(random, 0, classes - 1)
                               : (random() % 4 == 0 ? -7 : -1));
  }
  for (int32_t c = 0; c < classes; ++c) m.classScore.push_back(scores[random() % 8]);
  return m;
}

// The CPU answer: the core's eviction queue, popped k times.
std::vector<int32_t> cpuVictims(const Metadata& m, int32_t k) {
  const int32_t blocks = static_cast<int32_t>(m.tier.size());
  const int32_t classes = static_cast<int32_t>(m.classScore.size());
  EvictionQueue queue(blocks, classes, m.score.data(), m.lastAccess.data(), m.scoreClass.data(),
                      m.classScore.data());
  for (int32_t id = 0; id < blocks; ++id) {
    if (m.tier[id] == 1 && m.committed[id] && m.refCount[id] == 0 && m.deviceChildren[id] == 0) {
      queue.push(id);
    }
  }
  std::vector<int32_t> victims;
  while (static_cast<int32_t>(victims.size()) < k && !queue.empty()) {
    victims.push_back(queue.top());
    queue.remove(queue.top());
  }
  return victims;
}

template <typename T>
CudaDeviceBuffer uploaded(const std::vector<T>& values) {
  CudaDeviceBuffer buffer(values.size() * sizeof(T) + 1);
  buffer.upload(values.data(), values.size() * sizeof(T));
  return buffer;
}

void compareScores(const Metadata& m, const std::vector<float>& got, const std::string& what) {
  for (size_t i = 0; i < m.tier.size(); ++i) {
    const float want = m.scoreClass[i] >= 0 ? m.classScore[static_cast<size_t>(m.scoreClass[i])]
                                            : m.score[i];
    if (std::memcmp(&got[i], &want, sizeof want) != 0) {
      expect(false, what + ": effective score of block " + std::to_string(i) + " is " +
                        std::to_string(got[i]) + ", want " + std::to_string(want));
      return;
    }
  }
  expect(true, what + ": effective scores");
}

void compareVictims(const std::vector<int32_t>& got, const std::vector<int32_t>& want,
                    const std::string& what) {
  if (got == want) {
    expect(true, what);
    return;
  }
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  expect(false, what + ": " + std::to_string(got.size()) + " victims vs " +
                    std::to_string(want.size()) + ", first difference at " + std::to_string(i) +
                    (i < got.size() && i < want.size()
                         ? " (" + std::to_string(got[i]) + " vs " + std::to_string(want[i]) + ")"
                         : std::string()));
}

void testHitScoring(Random& random) {
  CudaHitScorer scorer;
  const int32_t sizes[][2] = {{0, 0}, {1, 0}, {17, 3}, {1000, 0}, {1000, 5},
                              {100003, 300}, {1 << 20, 4096}};
  for (const auto& size : sizes) {
    const int32_t blocks = size[0];
    const Metadata m = randomMetadata(random, blocks, size[1]);
    const int32_t evictable = static_cast<int32_t>(cpuVictims(m, blocks).size());
    const int32_t ks[] = {0, 1, 7, evictable / 2, evictable, blocks + 5};
    for (const int32_t k : ks) {
      const std::string what = "hit scoring, " + std::to_string(blocks) + " blocks, " +
                               std::to_string(size[1]) + " classes, k = " + std::to_string(k);
      const std::vector<int32_t> want = cpuVictims(m, k);
      std::vector<int32_t> victims(static_cast<size_t>(k) + 1, -1);
      std::vector<float> scores(static_cast<size_t>(blocks));
      const int32_t count = scorer.selectVictims(m.input(), k, victims.data(), scores.data());
      victims.resize(static_cast<size_t>(std::max(count, 0)));
      compareVictims(victims, want, what + " (host arrays)");
      if (k == 7) compareScores(m, scores, what);
    }
    // Device arrays, once per size.
    const CudaDeviceBuffer tier = uploaded(m.tier), committed = uploaded(m.committed),
                           refCount = uploaded(m.refCount),
                           deviceChildren = uploaded(m.deviceChildren),
                           lastAccess = uploaded(m.lastAccess), score = uploaded(m.score),
                           scoreClass = uploaded(m.scoreClass),
                           classScore = uploaded(m.classScore);
    HitScoringInput device = m.input();
    device.tier = tier.as<uint8_t>();
    device.committed = committed.as<uint8_t>();
    device.refCount = refCount.as<int32_t>();
    device.deviceChildren = deviceChildren.as<int32_t>();
    device.lastAccess = lastAccess.as<double>();
    device.score = score.as<float>();
    device.scoreClass = scoreClass.as<int32_t>();
    device.classScore = classScore.as<float>();
    const int32_t k = std::max(1, evictable / 3);
    CudaDeviceBuffer victimsDevice(static_cast<size_t>(k) * sizeof(int32_t));
    CudaDeviceBuffer scoresDevice(static_cast<size_t>(blocks) * sizeof(float) + 1);
    const int32_t count = scorer.selectVictimsOnDevice(device, k, victimsDevice.as<int32_t>(),
                                                       scoresDevice.as<float>());
    std::vector<int32_t> victims(static_cast<size_t>(std::max(count, 0)));
    victimsDevice.download(victims.data(), victims.size() * sizeof(int32_t));
    std::vector<float> scores(static_cast<size_t>(blocks));
    scoresDevice.download(scores.data(), scores.size() * sizeof(float));
    const std::string what = "hit scoring on device arrays, " + std::to_string(blocks) +
                             " blocks, k = " + std::to_string(k);
    compareVictims(victims, cpuVictims(m, k), what);
    compareScores(m, scores, what);
  }

  // A block manager's own metadata, through hitScoringInput().
  BlockManagerConfig config;
  config.blockSize = 2;
  config.deviceBlocks = 64;
  config.hostBlocks = 0;
  config.maxClasses = 8;
  BlockManager manager(config);
  for (int64_t request = 1; request <= 40; ++request) {
    const int32_t blocks = uniformInt(random, 1, 4);
    std::vector<uint64_t> hashes;
    for (int32_t b = 0; b < blocks; ++b) {
      hashes.push_back(static_cast<uint64_t>(request % 9) * 100 + static_cast<uint64_t>(b));
    }
    AdmitResult admitted;
    if (!manager.admit(request, hashes.data(), blocks, blocks * 2, RequestTags{}, admitted)) {
      continue;
    }
    manager.commit(request, blocks);
    if (request % 5 != 0) manager.release(request);  // some stay pinned
  }
  std::vector<int32_t> ids(static_cast<size_t>(manager.numBlockIds()));
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<int32_t> classes(ids.size());
  std::vector<float> scores(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    classes[i] = uniformInt(random, -1, 7);
    scores[i] = static_cast<float>(uniformInt(random, 0, 3));
  }
  manager.setAllScores(scores.data(), static_cast<int32_t>(scores.size()));
  manager.setScoreClasses(ids.data(), classes.data(), static_cast<int32_t>(ids.size()));
  const int32_t classIds[] = {0, 1, 2, 3, 4, 5, 6, 7};
  const float classScores[] = {2, 0, 1, 3, 0, 2, 1, 0};
  manager.setClassScores(classIds, classScores, 8);
  const BlockMetadata& metadata = *manager.metadata();
  Metadata copy{metadata.tier,       metadata.committed,  metadata.refCount,
                metadata.deviceChildren, metadata.scoreClass, metadata.lastAccess,
                metadata.score,      metadata.classScore};
  const int32_t k = manager.evictableBlocks(Tier::Device);
  std::vector<int32_t> victims(static_cast<size_t>(k) + 1);
  const int32_t count = scorer.selectVictims(hitScoringInput(metadata), k, victims.data());
  victims.resize(static_cast<size_t>(std::max(count, 0)));
  expect(k > 0, "the block manager has evictable blocks to order");
  compareVictims(victims, cpuVictims(copy, k), "hit scoring over a block manager's metadata");

  Metadata bad = randomMetadata(random, 50, 4);
  bad.scoreClass[31] = 4;
  bad.scoreClass[40] = 9;
  int32_t sink[4];
  expectThrows<std::out_of_range>([&] { scorer.selectVictims(bad.input(), 4, sink); },
                                  "hit scoring refuses a score class out of range");
  bad.scoreClass[31] = -1;
  bad.scoreClass[40] = -1;
  bad.scoreClass[12] = -1;
  bad.score[12] = std::nanf("");
  expectThrows<std::out_of_range>([&] { scorer.selectVictims(bad.input(), 4, sink); },
                                  "hit scoring refuses a NaN score");
}

// -------------------------------------------------------------- survival

SurvivalBatch randomBatch(Random& random, int32_t workloads, int32_t states, int32_t horizon) {
  return randomSurvivalBatch(random, workloads, states, horizon, 1);
}

// Largest |got - want| / max(0.1, |want|): <= 1e-5 is the tolerance
// max(1e-6, 1e-5 |want|).
double worstError(const std::vector<float>& got, const std::vector<float>& want, size_t* where) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double error = std::fabs(static_cast<double>(got[i]) - want[i]) /
                         std::max(0.1, std::fabs(static_cast<double>(want[i])));
    if (!(error <= worst)) {  // NaN counts as the worst
      worst = std::isnan(error) ? INFINITY : error;
      *where = i;
    }
  }
  return worst;
}

void compareSurvival(const SurvivalBatch& batch, const std::vector<float>& reach,
                     const std::vector<float>& alive, const std::vector<float>& expectedSteps,
                     const std::string& what) {
  std::vector<float> wantReach(batch.shape.reachSize()), wantAlive(batch.shape.aliveSize()),
      wantExpected(batch.shape.expectedStepsSize());
  computeSurvival(batch.view(), wantReach.data(), wantAlive.data(), wantExpected.data());
  const struct {
    const char* name;
    const std::vector<float>& got;
    const std::vector<float>& want;
  } outputs[] = {{"reach", reach, wantReach},
                 {"alive", alive, wantAlive},
                 {"expectedSteps", expectedSteps, wantExpected}};
  for (const auto& output : outputs) {
    size_t where = 0;
    const double worst = worstError(output.got, output.want, &where);
    char detail[160];
    std::snprintf(detail, sizeof detail, "%s: worst scaled error %.3g", output.name, worst);
    if (worst > 1e-5) {
      std::snprintf(detail, sizeof detail, "%s[%zu] = %.9g, cpu %.9g (scaled error %.3g)",
                    output.name, where, static_cast<double>(output.got[where]),
                    static_cast<double>(output.want[where]), worst);
    }
    expect(worst <= 1e-5, what + ": " + detail);
  }
}

void testSurvival(Random& random) {
  CudaSurvival survival;
  const int32_t maxStates = survival.maxStates();
  std::printf("survival: up to %d states per workload on this device\n", maxStates);
  // Both sides of the float/double switch at 32 steps, for both thread-block
  // sizes (up to 64 states, and above).
  const int32_t sizes[][3] = {{1, 1, 1},     {1, 2, 1},         {3, 5, 4},
                              {7, 9, 16},    {64, 16, 16},      {4, 33, 7},
                              {2, 100, 3},   {3, 4, 256},       {1024, 64, 16},
                              {6, 20, 32},   {6, 20, 33},       {16, 64, 64},
                              {2, 90, 40},   {5, maxStates, 4}, {9, maxStates - 1, 5}};
  for (const auto& size : sizes) {
    if (size[1] < 1 || size[1] > maxStates) continue;
    const SurvivalBatch batch = randomBatch(random, size[0], size[1], size[2]);
    const std::string what = "survival " + std::to_string(size[0]) + "x" +
                             std::to_string(size[1]) + "x" + std::to_string(size[2]);
    std::vector<float> reach(batch.shape.reachSize()), alive(batch.shape.aliveSize()),
        expectedSteps(batch.shape.expectedStepsSize());
    survival.compute(batch.view(), reach.data(), alive.data(), expectedSteps.data());
    compareSurvival(batch, reach, alive, expectedSteps, what + " (host arrays)");
  }

  const SurvivalBatch batch = randomBatch(random, 33, 12, 6);
  const CudaDeviceBuffer transitions = uploaded(batch.transitions);
  CudaDeviceBuffer endState = uploaded(batch.endState);
  CudaDeviceBuffer reachDevice(batch.shape.reachSize() * sizeof(float));
  CudaDeviceBuffer aliveDevice(batch.shape.aliveSize() * sizeof(float));
  CudaDeviceBuffer expectedDevice(batch.shape.expectedStepsSize() * sizeof(float));
  survival.computeOnDevice(batch.shape, transitions.as<float>(), endState.as<int32_t>(),
                           reachDevice.as<float>(), aliveDevice.as<float>(),
                           expectedDevice.as<float>());
  std::vector<float> reach(batch.shape.reachSize()), alive(batch.shape.aliveSize()),
      expectedSteps(batch.shape.expectedStepsSize());
  reachDevice.download(reach.data(), reach.size() * sizeof(float));
  aliveDevice.download(alive.data(), alive.size() * sizeof(float));
  expectedDevice.download(expectedSteps.data(), expectedSteps.size() * sizeof(float));
  compareSurvival(batch, reach, alive, expectedSteps, "survival 33x12x6 (device arrays)");

  std::vector<int32_t> badEnd = batch.endState;
  badEnd[20] = 12;
  endState.upload(badEnd.data(), badEnd.size() * sizeof(int32_t));
  expectThrows<std::out_of_range>(
      [&] {
        survival.computeOnDevice(batch.shape, transitions.as<float>(), endState.as<int32_t>(),
                                 reachDevice.as<float>(), aliveDevice.as<float>(),
                                 expectedDevice.as<float>());
      },
      "survival on device arrays refuses an END index out of range");
  SurvivalBatch nan = randomBatch(random, 2, 3, 2);
  nan.transitions[4] = std::nanf("");
  expectThrows<std::out_of_range>(
      [&] { survival.compute(nan.view(), reach.data(), alive.data(), expectedSteps.data()); },
      "survival refuses a NaN transition");
  if (maxStates < kMaxSurvivalStates) {
    const SurvivalBatch big = randomBatch(random, 1, maxStates + 1, 1);
    std::vector<float> out(big.shape.reachSize());
    expectThrows<std::out_of_range>(
        [&] { survival.compute(big.view(), out.data(), out.data(), out.data()); },
        "survival refuses more states than shared memory holds");
  }
}


// -------------------------------------------------------- paged attention

// A KV pool on the device and its host twin, both filled with the same
// random floats: stale K/V that the kernels must neither read nor overwrite.
struct PagedPools {
  engine::PageLayout layout;
  int32_t blocks;
  std::vector<float> host;
  CudaDeviceBuffer device;

  PagedPools(Random& random, const engine::PageLayout& pageLayout, int32_t blockCount)
      : layout(pageLayout),
        blocks(blockCount),
        host(randomFloats(random, static_cast<size_t>(pageLayout.blockStride() * blockCount))),
        device(host.size() * sizeof(float)) {
    device.upload(host.data(), host.size() * sizeof(float));
  }

  engine::PagedKv hostKv() { return {layout, host.data(), blocks}; }
  engine::PagedKv deviceKv() { return {layout, device.as<float>(), blocks}; }

  void compare(CudaPagedAttention& attention, const std::string& what) {
    attention.synchronize();
    std::vector<float> got(host.size());
    device.download(got.data(), got.size() * sizeof(float));
    expect(std::memcmp(got.data(), host.data(), got.size() * sizeof(float)) == 0, what);
  }

  static std::vector<float> randomFloats(Random& random, size_t count) {
    std::vector<float> out(count);
    for (float& value : out) value = static_cast<float>(2 * uniformReal(random) - 1);
    return out;
  }
};

// Largest |got - want| / (1 + |want|), the measure of the engine's own tests.
void compareAttention(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double error = std::fabs(static_cast<double>(got[i]) - want[i]) / (1 + std::fabs(want[i]));
    if (!(error <= worst)) worst = std::isnan(error) ? INFINITY : error;
  }
  char detail[64];
  std::snprintf(detail, sizeof detail, ": worst error %.3g", worst);
  expect(worst <= 1e-5, what + detail);
}

std::vector<float> downloaded(CudaPagedAttention& attention, const CudaDeviceBuffer& buffer, size_t count) {
  attention.synchronize();
  std::vector<float> out(count);
  buffer.download(out.data(), count * sizeof(float));
  return out;
}

template <typename T>
std::vector<T> slice(const std::vector<T>& values, size_t first, size_t count) {
  return std::vector<T>(values.begin() + static_cast<std::ptrdiff_t>(first),
                        values.begin() + static_cast<std::ptrdiff_t>(first + count));
}

struct AttentionShape {
  int32_t layers, kvHeads, blockSize, headDim, group;
};

std::string describe(const AttentionShape& shape) {
  return std::to_string(shape.kvHeads * shape.group) + "/" + std::to_string(shape.kvHeads) + " heads, headDim " +
         std::to_string(shape.headDim) + ", block " + std::to_string(shape.blockSize);
}

engine::PageLayout layoutOf(const AttentionShape& shape) {
  engine::PageLayout layout;
  layout.layers = shape.layers;
  layout.kvHeads = shape.kvHeads;
  layout.blockSize = shape.blockSize;
  layout.headDim = shape.headDim;
  return layout;
}

// Head dimensions below, at and above a warp, and contexts past one
// 128-position tile of the kernel.
const AttentionShape kAttentionShapes[] = {
    {2, 2, 4, 16, 2}, {1, 1, 16, 128, 8}, {3, 4, 16, 64, 1}, {2, 2, 8, 40, 3}, {1, 8, 16, 256, 4}, {2, 1, 1, 8, 2},
};

// Two chunks through appendKv and prefill, the second starting mid-block.
void testPagedPrefill(Random& random) {
  CudaPagedAttention attention;
  int trial = 0;
  for (const AttentionShape& shape : kAttentionShapes) {
    const engine::PageLayout layout = layoutOf(shape);
    const int32_t heads = shape.kvHeads * shape.group;
    const int32_t first = shape.blockSize * uniformInt(random, 0, 2) + std::max(1, shape.blockSize / 2);
    const int32_t second = trial++ % 2 == 0 ? uniformInt(random, 129, 300) : uniformInt(random, 1, 40);
    const int32_t tokens = first + second;
    const int32_t needed = (tokens + shape.blockSize - 1) / shape.blockSize;
    PagedPools pools(random, layout, needed + 3);
    std::vector<int32_t> slots(static_cast<size_t>(pools.blocks));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), random);
    const engine::BlockTableView table{slots.data(), needed};
    const size_t perToken = static_cast<size_t>(shape.kvHeads * shape.headDim);
    const std::vector<float> k = PagedPools::randomFloats(random, static_cast<size_t>(tokens) * perToken);
    const std::vector<float> v = PagedPools::randomFloats(random, k.size());
    const int32_t layer = uniformInt(random, 0, shape.layers - 1);
    for (const auto& [start, count] : {std::pair{0, first}, std::pair{first, second}}) {
      const std::string what = "paged prefill, " + describe(shape) + ", positions [" + std::to_string(start) + ", " +
                               std::to_string(start + count) + ")";
      const size_t rows = static_cast<size_t>(count) * perToken;
      const CudaDeviceBuffer kDevice = uploaded(slice(k, static_cast<size_t>(start) * perToken, rows));
      const CudaDeviceBuffer vDevice = uploaded(slice(v, static_cast<size_t>(start) * perToken, rows));
      engine::appendKv(pools.hostKv(), layer, table, start, count, &k[static_cast<size_t>(start) * perToken],
                       &v[static_cast<size_t>(start) * perToken]);
      attention.appendKv(pools.deviceKv(), layer, table, start, count, kDevice.as<float>(), vDevice.as<float>());
      pools.compare(attention, what + ": appendKv bytes");

      const size_t outputs = static_cast<size_t>(count) * static_cast<size_t>(heads * shape.headDim);
      const std::vector<float> q = PagedPools::randomFloats(random, outputs);
      const CudaDeviceBuffer qDevice = uploaded(q);
      CudaDeviceBuffer outDevice(outputs * sizeof(float));
      attention.prefill(pools.deviceKv(), layer, heads, table, start, count, qDevice.as<float>(),
                        outDevice.as<float>());
      std::vector<float> want(outputs);
      engine::referenceAttention(heads, shape.kvHeads, shape.headDim, start, count, q.data(), k.data(), v.data(),
                                 want.data());
      compareAttention(downloaded(attention, outDevice, outputs), want, what);
    }
  }
}

// A batch of sequences on disjoint shuffled slots of one pool, at
// positions that open a block, close one, and span several tiles.
void testPagedDecode(Random& random) {
  CudaPagedAttention attention;
  for (const AttentionShape& shape : kAttentionShapes) {
    const engine::PageLayout layout = layoutOf(shape);
    const int32_t heads = shape.kvHeads * shape.group;
    const std::vector<int32_t> positions = {0, shape.blockSize - 1, shape.blockSize, uniformInt(random, 1, 60),
                                            uniformInt(random, 129, 300)};
    const int32_t batch = static_cast<int32_t>(positions.size());
    std::vector<int32_t> firstBlock;
    int32_t blocks = 0;
    for (const int32_t position : positions) {
      firstBlock.push_back(blocks);
      blocks += position / shape.blockSize + 1;
    }
    PagedPools pools(random, layout, blocks + 2);
    std::vector<int32_t> slots(static_cast<size_t>(pools.blocks));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), random);
    const int32_t layer = uniformInt(random, 0, shape.layers - 1);
    const size_t perToken = static_cast<size_t>(shape.kvHeads * shape.headDim);
    const size_t perQuery = static_cast<size_t>(heads * shape.headDim);
    const std::vector<float> q = PagedPools::randomFloats(random, static_cast<size_t>(batch) * perQuery);
    std::vector<float> want(q.size());
    std::vector<engine::BlockTableView> tables;
    for (int32_t s = 0; s < batch; ++s) {
      const int32_t position = positions[static_cast<size_t>(s)];
      const engine::BlockTableView table{slots.data() + firstBlock[static_cast<size_t>(s)],
                                         position / shape.blockSize + 1};
      tables.push_back(table);
      const std::vector<float> k = PagedPools::randomFloats(random, static_cast<size_t>(position + 1) * perToken);
      const std::vector<float> v = PagedPools::randomFloats(random, k.size());
      const CudaDeviceBuffer kDevice = uploaded(k), vDevice = uploaded(v);
      engine::appendKv(pools.hostKv(), layer, table, 0, position + 1, k.data(), v.data());
      attention.appendKv(pools.deviceKv(), layer, table, 0, position + 1, kDevice.as<float>(), vDevice.as<float>());
      attention.synchronize();  // kDevice and vDevice are freed at the end of this iteration
      const size_t row = static_cast<size_t>(s) * perQuery;
      engine::referenceAttention(heads, shape.kvHeads, shape.headDim, position, 1, &q[row], k.data(), v.data(),
                                 &want[row]);
    }
    const std::string what = "paged decode, " + describe(shape) + ", batch " + std::to_string(batch);
    pools.compare(attention, what + ": appendKv bytes");
    const CudaDeviceBuffer qDevice = uploaded(q);
    CudaDeviceBuffer outDevice(q.size() * sizeof(float));
    attention.decode(pools.deviceKv(), layer, heads, batch, tables.data(), positions.data(), qDevice.as<float>(),
                     outDevice.as<float>());
    compareAttention(downloaded(attention, outDevice, q.size()), want, what);
  }
}

void testPagedAttentionErrors(Random& random) {
  CudaPagedAttention attention;
  const AttentionShape shape{2, 2, 4, 8, 2};
  PagedPools pools(random, layoutOf(shape), 3);
  const std::vector<float> rows = PagedPools::randomFloats(random, 64);
  const CudaDeviceBuffer device = uploaded(rows);
  CudaDeviceBuffer out(rows.size() * sizeof(float));
  const float* in = device.as<float>();
  const int32_t inside[] = {2, 0};
  const int32_t outside[] = {1, 3};
  const engine::PagedKv kv = pools.deviceKv();
  expectThrows<std::out_of_range>([&] { attention.appendKv(kv, 0, {outside, 2}, 3, 2, in, in); },
                                  "appendKv refuses a slot outside the pool");
  expectThrows<std::out_of_range>([&] { attention.appendKv(kv, 2, {inside, 2}, 0, 1, in, in); },
                                  "appendKv refuses a layer out of range");
  expectThrows<std::out_of_range>([&] { attention.appendKv(kv, 0, {inside, 1}, 3, 2, in, in); },
                                  "appendKv refuses a table too short for its tokens");
  expectThrows<std::out_of_range>([&] { attention.prefill(kv, 0, 3, {inside, 2}, 0, 2, in, out.as<float>()); },
                                  "prefill refuses heads that are not a multiple of kvHeads");
  expectThrows<std::out_of_range>([&] { attention.prefill(kv, 0, 4, {outside, 2}, 2, 3, in, out.as<float>()); },
                                  "prefill refuses a slot outside the pool");
  const engine::BlockTableView tables[] = {{inside, 2}, {inside, 1}};
  const int32_t badPosition[] = {1, -1};
  const int32_t pastTable[] = {1, 4};
  expectThrows<std::out_of_range>(
      [&] { attention.decode(kv, 0, 4, 2, tables, badPosition, in, out.as<float>()); },
      "decode refuses a negative position");
  expectThrows<std::out_of_range>([&] { attention.decode(kv, 0, 4, 2, tables, pastTable, in, out.as<float>()); },
                                  "decode refuses a position past its block table");
  pools.compare(attention, "refused paged attention calls wrote nothing");
}

// The whole engine with its KV pool in device memory (CudaEngineAttention)
// against the same engine on the CPU kernels: a one-shot prefill, then the
// same prompt in random chunks, each batched with a decode step of the
// first sequence. The dense parts run on the host in both; layer 0's K/V
// rows are copies of the same floats, later layers' went through each
// side's attention, so the pools and the logits agree within 1e-4.
void testEngineOnDevice(Random& random) {
  for (int trial = 0; trial < 4; trial++) {
    engine::ModelConfig c;
    c.kvHeads = 1 + static_cast<int32_t>(random() % 2);
    c.heads = c.kvHeads * (1 + static_cast<int32_t>(random() % 3));
    c.modelDim = c.heads * 8 * (1 + static_cast<int32_t>(random() % 2));
    c.layers = 1 + static_cast<int32_t>(random() % 2);
    c.ffnDim = 2 * c.modelDim;
    c.vocab = 97;
    const int32_t blockSize = 1 + static_cast<int32_t>(random() % 8);
    const int32_t n = 2 + static_cast<int32_t>(random() % 40);
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    for (auto& t : tokens) t = static_cast<int32_t>(random() % static_cast<uint64_t>(c.vocab));
    const engine::Weights weights = engine::randomWeights(c, random());
    const int32_t perSequence = (n + blockSize - 1) / blockSize;
    PagedPools pools(random, engine::pageLayout(c, blockSize), 2 * perSequence + 1);
    const int64_t poolBytes = static_cast<int64_t>(pools.host.size() * sizeof(float));
    engine::Engine cpu(c, weights, blockSize, pools.host.data(), poolBytes, 2);
    engine::Engine gpu(c, weights, blockSize, pools.device.data(), poolBytes, 2, std::make_unique<CudaEngineAttention>());
    std::vector<int32_t> slots(static_cast<size_t>(pools.blocks));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), random);
    const engine::BlockTableView tableA{slots.data(), perSequence};
    const engine::BlockTableView tableB{slots.data() + perSequence, perSequence};
    const std::string shape = "engine on the device, layers " + std::to_string(c.layers) + " heads " +
                              std::to_string(c.heads) + "/" + std::to_string(c.kvHeads) + " block " +
                              std::to_string(blockSize) + " tokens " + std::to_string(n);
    auto both = [&](const std::vector<engine::SequenceChunk>& batch, bool allLogits, const std::string& what) {
      const size_t rows = static_cast<size_t>(engine::Engine::logitRows(batch, allLogits));
      std::vector<float> want(rows * static_cast<size_t>(c.vocab)), got(want.size());
      cpu.forward(batch, allLogits, want.data());
      gpu.forward(batch, allLogits, got.data());
      double worst = 0;
      for (size_t i = 0; i < want.size(); i++) {
        const double error = std::fabs(static_cast<double>(got[i]) - want[i]) / (1 + std::fabs(want[i]));
        if (!(error <= worst)) worst = std::isnan(error) ? INFINITY : error;
      }
      expect(worst <= 1e-4, shape + ", " + what + ": worst logit error " + std::to_string(worst));
    };
    both({{tokens.data(), n, 0, 0, tableA}}, true, "one-shot prefill");
    for (int32_t at = 0; at < n;) {
      const int32_t count = std::min<int32_t>(n - at, 1 + static_cast<int32_t>(random() % 9));
      both({{tokens.data() + at, count, at, at, tableB}, {tokens.data() + n - 1, 1, n - 1, n, tableA}}, false,
           "chunk at " + std::to_string(at) + " beside a decode");
      at += count;
    }
    std::vector<float> device(pools.host.size());
    pools.device.download(device.data(), device.size() * sizeof(float));
    double worst = 0;
    for (size_t i = 0; i < device.size(); i++) {
      const double error = std::fabs(static_cast<double>(device[i]) - pools.host[i]) / (1 + std::fabs(pools.host[i]));
      if (!(error <= worst)) worst = std::isnan(error) ? INFINITY : error;
    }
    expect(worst <= 1e-4, shape + ": the device pool holds the CPU engine's K/V, worst error " + std::to_string(worst));
  }
}

}  // namespace
}  // namespace cachesage

int main(int argc, char** argv) {
  using namespace cachesage;
  std::string why;
  if (!cudaAvailable(&why)) {
    std::printf("cachesage_cuda_test: skipped: no CUDA device (%s)\n", why.c_str());
    return 0;
  }
  const uint64_t seed =
      argc > 1 ? std::strtoull(argv[1], nullptr, 10)
               : static_cast<uint64_t>(
                     std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("cachesage_cuda_test: %s, seed %llu\n", cudaDeviceDescription().c_str(),
              static_cast<unsigned long long>(seed));
  Random random(seed);
  const std::pair<const char*, void (*)(Random&)> suites[] = {
      {"random plans", testRandomPlans}, {"block manager plans", testManagerPlans},
      {"prefetch", testPrefetch},        {"copyBlocksCuda", testCopyBlocksCuda},
      {"copy errors", testCopyErrors},   {"hit scoring", testHitScoring},
      {"survival", testSurvival},
      {"paged prefill", testPagedPrefill}, {"paged decode", testPagedDecode},
      {"paged attention errors", testPagedAttentionErrors},
      {"engine on the device", testEngineOnDevice},
  };
  for (const auto& suite : suites) {
    try {
      suite.second(random);
    } catch (const std::exception& error) {
      expect(false, std::string(suite.first) + ": unexpected exception: " + error.what());
    }
  }
  if (failures > 0) {
    std::printf("cachesage_cuda_test: %d of %d checks failed (seed %llu)\n", failures, checks,
                static_cast<unsigned long long>(seed));
    return 1;
  }
  std::printf("cachesage_cuda_test: %d checks passed\n", checks);
  return 0;
}
