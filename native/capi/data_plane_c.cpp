// The C ABI over cachesage::CpuDataPlane: the cs_dp_* entry points
// (cachesage.h documents them; capi_util.h the error handling they share).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "cachesage.h"
#include "capi_util.h"
#include "data_plane.h"

using namespace cachesage::capi;
using cachesage::Tier;

struct cs_data_plane {
  cs_data_plane(int64_t bytesPerBlock, int32_t deviceBlocks, int32_t hostBlocks)
      : core(bytesPerBlock, deviceBlocks, hostBlocks) {}

  cachesage::CpuDataPlane core;
  mutable char error[kErrorSize] = {};

  // Checks that [offset, offset + size) lies inside block (tier, slot).
  Tier checkRange(int32_t tier, int32_t slot, int64_t offset, int64_t size,
                  const char* op) const {
    const Tier t = toTier(tier, op);
    const int32_t limit = core.blocks(t);
    if (slot < 0 || slot >= limit) {
      throw std::out_of_range(std::string(op) + ": slot " + str(slot) + " is out of range [0, " +
                              str(limit) + ")");
    }
    const int64_t bytes = core.bytesPerBlock();
    if (offset < 0 || size < 0 || offset > bytes || size > bytes - offset) {
      throw std::out_of_range(std::string(op) + ": " + str(size) + " bytes at offset " +
                              str(offset) + " do not fit a block of " + str(bytes) + " bytes");
    }
    return t;
  }
};

namespace {

template <typename Body>
int32_t withPlane(const cs_data_plane* dp, Body&& body) noexcept {
  if (dp == nullptr) return CS_ERR_INVALID_ARGUMENT;
  return guarded(dp->error, sizeof dp->error, body);
}

// Pools are sized in size_t; a product past PTRDIFF_MAX would wrap.
void checkPoolSize(int64_t bytesPerBlock, int32_t blocks, const char* name) {
  if (blocks > 0 && bytesPerBlock > std::numeric_limits<std::ptrdiff_t>::max() / blocks) {
    throw std::out_of_range(std::string("data plane: bytes_per_block x ") + name +
                            " overflows the address space");
  }
}

}  // namespace

extern "C" {

cs_data_plane* cs_dp_create(const cs_config* config, char* err, size_t err_size) {
  cs_data_plane* dp = nullptr;
  guarded(err, err_size, [&]() -> int32_t {
    requireNonNull(config, "data plane", "config");
    if (config->bytes_per_block < 0) {
      throw std::out_of_range("data plane: bytes_per_block must be >= 0, got " +
                              str(config->bytes_per_block));
    }
    if (config->device_blocks < 0) {
      throw std::out_of_range("data plane: device_blocks must be >= 0, got " +
                              str(config->device_blocks));
    }
    if (config->host_blocks < 0) {
      throw std::out_of_range("data plane: host_blocks must be >= 0, got " +
                              str(config->host_blocks));
    }
    checkPoolSize(config->bytes_per_block, config->device_blocks, "device_blocks");
    checkPoolSize(config->bytes_per_block, config->host_blocks, "host_blocks");
    dp = new cs_data_plane(config->bytes_per_block, config->device_blocks, config->host_blocks);
    return CS_OK;
  });
  return dp;
}

void cs_dp_destroy(cs_data_plane* dp) { delete dp; }

const char* cs_dp_last_error(const cs_data_plane* dp) {
  return dp == nullptr ? "cs_data_plane handle is NULL" : dp->error;
}

int32_t cs_dp_bytes_per_block(const cs_data_plane* dp, int64_t* out) {
  return withPlane(dp, [&]() -> int32_t {
    requireNonNull(out, "bytes_per_block", "out");
    *out = dp->core.bytesPerBlock();
    return CS_OK;
  });
}

int32_t cs_dp_blocks(const cs_data_plane* dp, int32_t tier) {
  return withPlane(dp, [&]() -> int32_t { return dp->core.blocks(toTier(tier, "blocks")); });
}

int32_t cs_dp_execute(cs_data_plane* dp, const uint8_t* src_tier, const int32_t* src_slot,
                      const uint8_t* dst_tier, const int32_t* dst_slot, int32_t count) {
  return withPlane(dp, [&]() -> int32_t {
    const char* op = "execute";
    requireArray(src_tier, count, op, "src_tier");
    requireArray(src_slot, count, op, "src_slot");
    requireArray(dst_tier, count, op, "dst_tier");
    requireArray(dst_slot, count, op, "dst_slot");
    if (count == 0) return CS_OK;
    const cachesage::CopyPlanView view{src_tier, src_slot, dst_tier, dst_slot, count};
    dp->core.execute(view);
    return CS_OK;
  });
}

int32_t cs_dp_execute_plan(cs_data_plane* dp, const cs_copy_plan* plan) {
  if (dp != nullptr && plan == nullptr) {
    copyMessage(dp->error, sizeof dp->error, "execute_plan: plan is NULL");
    return CS_ERR_INVALID_ARGUMENT;
  }
  if (plan == nullptr) return CS_ERR_INVALID_ARGUMENT;
  return cs_dp_execute(dp, plan->src_tier, plan->src_slot, plan->dst_tier, plan->dst_slot,
                       plan->count);
}

int32_t cs_dp_write_block(cs_data_plane* dp, int32_t tier, int32_t slot, int64_t offset,
                          const void* data, int64_t size) {
  return withPlane(dp, [&]() -> int32_t {
    const char* op = "write_block";
    requireArray(data, size, op, "data");
    const Tier t = dp->checkRange(tier, slot, offset, size, op);
    if (size > 0) std::memcpy(dp->core.block(t, slot) + offset, data, static_cast<size_t>(size));
    return CS_OK;
  });
}

int32_t cs_dp_read_block(const cs_data_plane* dp, int32_t tier, int32_t slot, int64_t offset,
                         void* out, int64_t size) {
  return withPlane(dp, [&]() -> int32_t {
    const char* op = "read_block";
    requireArray(out, size, op, "out");
    const Tier t = dp->checkRange(tier, slot, offset, size, op);
    if (size > 0) std::memcpy(out, dp->core.block(t, slot) + offset, static_cast<size_t>(size));
    return CS_OK;
  });
}

int32_t cs_dp_block_pointer(cs_data_plane* dp, int32_t tier, int32_t slot, uint8_t** out) {
  return withPlane(dp, [&]() -> int32_t {
    requireNonNull(out, "block_pointer", "out");
    const Tier t = dp->checkRange(tier, slot, 0, 0, "block_pointer");
    *out = dp->core.bytesPerBlock() == 0 ? nullptr : dp->core.block(t, slot);
    return CS_OK;
  });
}

}  // extern "C"
