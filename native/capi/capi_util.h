// Shared by the C ABI's entry points (one file per exposed class, like
// native/napi): error capture, argument checks, tier conversion. Internal to
// libcachesage; not installed.
//
// Every entry point funnels its body through guarded(), which turns each
// exception into a status code and a message: nothing may unwind into C or
// ctypes callers. Buffer and pointer checks happen in the entry points,
// before the core is called, so a failing call leaves the handle untouched.
// Like the core, each call checks its arguments before anything that depends
// on state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "cachesage.h"
#include "tier.h"

namespace cachesage::capi {

constexpr size_t kErrorSize = 512;

// Fixed-size storage, so recording an error can never itself throw.
inline void copyMessage(char* dst, size_t size, const char* msg) noexcept {
  if (dst == nullptr || size == 0) return;
  size_t n = std::strlen(msg);
  if (n >= size) n = size - 1;
  std::memcpy(dst, msg, n);
  dst[n] = '\0';
}

// A caller buffer cannot hold the result; the needed size was reported.
class BufferTooSmall : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename Body>
int32_t guarded(char* err, size_t errSize, Body&& body) noexcept {
  copyMessage(err, errSize, "");
  try {
    return body();
  } catch (const BufferTooSmall& e) {
    copyMessage(err, errSize, e.what());
    return CS_ERR_BUFFER_TOO_SMALL;
  } catch (const std::invalid_argument& e) {
    copyMessage(err, errSize, e.what());
    return CS_ERR_INVALID_ARGUMENT;
  } catch (const std::out_of_range& e) {
    copyMessage(err, errSize, e.what());
    return CS_ERR_INVALID_ARGUMENT;
  } catch (const std::length_error& e) {
    copyMessage(err, errSize, e.what());
    return CS_ERR_OUT_OF_MEMORY;
  } catch (const std::bad_alloc&) {
    copyMessage(err, errSize, "out of memory");
    return CS_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    copyMessage(err, errSize, e.what());
    return CS_ERR_INTERNAL;
  } catch (...) {
    copyMessage(err, errSize, "internal: unknown exception");
    return CS_ERR_INTERNAL;
  }
}

inline std::string str(int64_t v) { return std::to_string(v); }

inline void requireNonNull(const void* p, const char* op, const char* name) {
  if (p == nullptr) throw std::invalid_argument(std::string(op) + ": " + name + " is NULL");
}

// An input array: count >= 0, and a pointer whenever there is something to read.
inline void requireArray(const void* p, int64_t count, const char* op, const char* name) {
  if (count < 0) {
    throw std::out_of_range(std::string(op) + ": " + name + " count must be >= 0, got " +
                            str(count));
  }
  if (count > 0 && p == nullptr) {
    throw std::invalid_argument(std::string(op) + ": " + name + " is NULL but its count is " +
                                str(count));
  }
}

inline void requireCapacity(int32_t capacity, const char* op) {
  if (capacity < 0) {
    throw std::out_of_range(std::string(op) + ": capacity must be >= 0, got " + str(capacity));
  }
}

inline Tier toTier(int32_t tier, const char* op) {
  if (tier != CS_TIER_DEVICE && tier != CS_TIER_HOST) {
    throw std::invalid_argument(std::string(op) +
                                ": tier must be CS_TIER_DEVICE (1) or CS_TIER_HOST (2), got " +
                                str(tier));
  }
  return static_cast<Tier>(tier);
}

}  // namespace cachesage::capi
