// The C ABI's entry points without a handle: version, status names, and
// token-block hashing (cachesage.h).
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "cachesage.h"
#include "capi_util.h"
#include "token_hash.h"

using namespace cachesage::capi;

extern "C" {

int32_t cs_abi_version(void) { return CS_ABI_VERSION; }

const char* cs_status_string(int32_t status) {
  switch (status) {
    case CS_OK: return "CS_OK";
    case CS_ERR_INVALID_ARGUMENT: return "CS_ERR_INVALID_ARGUMENT";
    case CS_ERR_BUFFER_TOO_SMALL: return "CS_ERR_BUFFER_TOO_SMALL";
    case CS_ERR_OUT_OF_MEMORY: return "CS_ERR_OUT_OF_MEMORY";
    case CS_ERR_INVARIANT: return "CS_ERR_INVARIANT";
    case CS_ERR_INTERNAL: return "CS_ERR_INTERNAL";
    case CS_ERR_IO: return "CS_ERR_IO";
    case CS_ERR_PROTOCOL: return "CS_ERR_PROTOCOL";
    case CS_ERR_DENIED: return "CS_ERR_DENIED";
    case CS_ERR_BUSY: return "CS_ERR_BUSY";
    default: return status > 0 ? "CS_OK (positive result)" : "unknown status";
  }
}

int32_t cs_hash_token_blocks(const uint32_t* tokens, int64_t count, int32_t block_size,
                             uint64_t parent, uint64_t* out, int32_t out_capacity,
                             int32_t* written, char* err, size_t err_size) {
  return guarded(err, err_size, [&]() -> int32_t {
    const char* op = "hash_token_blocks";
    requireArray(tokens, count, op, "tokens");
    requireNonNull(written, op, "written");
    requireCapacity(out_capacity, op);
    if (out_capacity > 0) requireNonNull(out, op, "out");
    if (block_size < 1) {
      throw std::out_of_range(std::string(op) + ": block_size must be >= 1, got " +
                              str(block_size));
    }
    const int64_t blocks = count / block_size;
    if (blocks > std::numeric_limits<int32_t>::max()) {
      throw std::out_of_range(std::string(op) + ": " + str(blocks) + " blocks exceed int32");
    }
    *written = static_cast<int32_t>(blocks);
    if (blocks > out_capacity) {
      throw BufferTooSmall(std::string(op) + ": " + str(blocks) + " hashes but out holds " +
                           str(out_capacity));
    }
    if (blocks > 0) cachesage::hashTokenBlocks(tokens, count, block_size, parent, out);
    return CS_OK;
  });
}

}  // extern "C"
