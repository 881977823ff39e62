// The native block manager's own cost per block, without Node: requests of
// `--prompt` fresh blocks (nothing cached, so every block of an admit is
// new and, once the device tier is full, evicts one) are admitted,
// committed and released against a device tier of `--device` blocks, with
// and without a host tier of 4x that (evictions then demote, and demotions
// drop host blocks). Reports nanoseconds per block of each operation, the
// median over requests after the tier filled.
//
//   cachesage_block_bench [--json] [--device N] [--prompt N] [--requests N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "block_manager.h"

namespace {

using namespace cachesage;
using Clock = std::chrono::steady_clock;

struct Options {
  bool json = false;
  int32_t device = 4096;
  int32_t prompt = 128;
  int32_t requests = 4000;
};

struct PerBlock {
  double admit = 0;
  double commit = 0;
  double release = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double nanos(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

PerBlock run(const Options& o, int32_t hostBlocks) {
  BlockManagerConfig config;
  config.blockSize = 16;
  config.deviceBlocks = o.device;
  config.hostBlocks = hostBlocks;
  config.maxClasses = 0;
  BlockManager manager(config);
  std::vector<uint64_t> hashes(static_cast<size_t>(o.prompt));
  uint64_t next = 1;
  Events events;
  CopyPlan plan;
  std::vector<double> admit, commit, release;
  // Fill both tiers first, so every measured admit evicts (and demotes).
  const int64_t fill = (static_cast<int64_t>(o.device) + hostBlocks) / o.prompt + 1;
  for (int64_t r = 0; r < fill + o.requests; ++r) {
    // splitmix-style distinct values: fresh hashes, no shared prefix.
    for (uint64_t& h : hashes) h = (next++) * 0x9e3779b97f4a7c15ULL;
    RequestTags tags;
    tags.workload = 0;
    tags.agent = 0;
    tags.session = static_cast<int32_t>(r % 64);
    AdmitResult admitted;
    const auto t0 = Clock::now();
    if (!manager.admit(r, hashes.data(), o.prompt, o.prompt * 16, tags, admitted)) {
      std::fprintf(stderr, "block_bench: admit refused on an unpinned cache\n");
      std::exit(1);
    }
    const auto t1 = Clock::now();
    manager.commit(r, o.prompt);
    const auto t2 = Clock::now();
    manager.release(r);
    const auto t3 = Clock::now();
    manager.takeEvents(events);
    manager.takeCopyPlan(plan);
    if (r >= fill) {
      admit.push_back(nanos(t0, t1) / o.prompt);
      commit.push_back(nanos(t1, t2) / o.prompt);
      release.push_back(nanos(t2, t3) / o.prompt);
    }
  }
  const std::string broken = manager.checkInvariants();
  if (!broken.empty()) {
    std::fprintf(stderr, "block_bench: invariant broken: %s\n", broken.c_str());
    std::exit(1);
  }
  return {median(admit), median(commit), median(release)};
}

int32_t positive(const char* flag, const char* value) {
  char* end = nullptr;
  const long v = value == nullptr ? 0 : std::strtol(value, &end, 10);
  if (value == nullptr || *end != '\0' || v < 1 || v > (1L << 28)) {
    std::fprintf(stderr, "block_bench: %s needs a whole number in [1, 2^28]\n", flag);
    std::exit(2);
  }
  return static_cast<int32_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (std::strcmp(a, "--json") == 0) {
      o.json = true;
    } else if (std::strcmp(a, "--device") == 0) {
      o.device = positive(a, value), ++i;
    } else if (std::strcmp(a, "--prompt") == 0) {
      o.prompt = positive(a, value), ++i;
    } else if (std::strcmp(a, "--requests") == 0) {
      o.requests = positive(a, value), ++i;
    } else {
      std::fprintf(stderr, "block_bench: unknown flag %s (expected --json, --device N, --prompt N, --requests N)\n", a);
      return 2;
    }
  }
  if (o.prompt > o.device) {
    std::fprintf(stderr, "block_bench: --prompt %d exceeds --device %d\n", o.prompt, o.device);
    return 2;
  }
  const PerBlock deviceOnly = run(o, 0);
  const PerBlock withHost = run(o, 4 * o.device);
  if (o.json) {
    std::printf(
        "{\"deviceBlocks\":%d,\"promptBlocks\":%d,\"requests\":%d,"
        "\"deviceOnly\":{\"admitNsPerBlock\":%.1f,\"commitNsPerBlock\":%.1f,\"releaseNsPerBlock\":%.1f},"
        "\"withHost\":{\"admitNsPerBlock\":%.1f,\"commitNsPerBlock\":%.1f,\"releaseNsPerBlock\":%.1f}}\n",
        o.device, o.prompt, o.requests, deviceOnly.admit, deviceOnly.commit, deviceOnly.release, withHost.admit,
        withHost.commit, withHost.release);
    return 0;
  }
  std::printf("device tier %d blocks, %d fresh blocks per request, median of %d requests\n", o.device, o.prompt,
              o.requests);
  std::printf("ns per block          admit   commit  release\n");
  std::printf("device only        %8.1f %8.1f %8.1f\n", deviceOnly.admit, deviceOnly.commit, deviceOnly.release);
  std::printf("host tier 4x       %8.1f %8.1f %8.1f\n", withHost.admit, withHost.commit, withHost.release);
  return 0;
}
