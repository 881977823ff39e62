// Argument checks and error translation shared by the N-API wrappers. The
// TypeScript layer validates first; these checks are the second line, so a
// caller that bypasses it gets a JS error, never a crash.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace cachesage::napi {

// Runs `body`, turning core exceptions into JS errors: out_of_range (a value
// out of range) and invalid_argument (a state error such as an unknown
// request or inconsistent hashes) become a RangeError, as the API promises
// for misuse; anything else is an Error marked internal.
template <typename Body>
auto guarded(const Napi::Env& env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::out_of_range& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("internal error: ") + e.what());
  }
}

inline Napi::Value arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

inline std::string argName(const char* op, size_t i) {
  return std::string(op) + ": argument " + std::to_string(i);
}

inline double numberArg(const Napi::CallbackInfo& info, size_t i, const char* op, double min,
                        double max) {
  Napi::Value v = arg(info, i);
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), argName(op, i) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) {
    throw Napi::RangeError::New(info.Env(), argName(op, i) + " must be an integer");
  }
  if (d < min || d > max) {
    throw Napi::RangeError::New(info.Env(), argName(op, i) + " is out of range [" +
                                                std::to_string(static_cast<int64_t>(min)) + ", " +
                                                std::to_string(static_cast<int64_t>(max)) + "]");
  }
  return d;
}

inline int32_t int32Arg(const Napi::CallbackInfo& info, size_t i, const char* op,
                        int32_t min = INT32_MIN, int32_t max = INT32_MAX) {
  return static_cast<int32_t>(numberArg(info, i, op, min, max));
}

// A bigint argument that fits in 64 unsigned bits.
inline uint64_t uint64BigIntArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Napi::Value v = arg(info, i);
  if (!v.IsBigInt()) throw Napi::TypeError::New(info.Env(), argName(op, i) + " must be a bigint");
  bool lossless = false;
  uint64_t value = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(info.Env(), argName(op, i) + " must fit in 64 unsigned bits");
  return value;
}

constexpr double kMaxSafeInteger = 9007199254740991.0;

inline int64_t requestIdArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return static_cast<int64_t>(numberArg(info, i, op, 0, kMaxSafeInteger));
}

template <typename T, napi_typedarray_type Type>
inline Napi::TypedArrayOf<T> typedArg(const Napi::CallbackInfo& info, size_t i, const char* op,
                                      const char* typeName) {
  Napi::Value v = arg(info, i);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Type) {
    throw Napi::TypeError::New(info.Env(), argName(op, i) + " must be a " + typeName);
  }
  return v.As<Napi::TypedArrayOf<T>>();
}

inline Napi::BigUint64Array hashesArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return typedArg<uint64_t, napi_biguint64_array>(info, i, op, "BigUint64Array");
}
inline Napi::Int32Array idsArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return typedArg<int32_t, napi_int32_array>(info, i, op, "Int32Array");
}
inline Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return typedArg<uint8_t, napi_uint8_array>(info, i, op, "Uint8Array");
}
inline Napi::Float32Array scoresArg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  return typedArg<float, napi_float32_array>(info, i, op, "Float32Array");
}

inline int32_t lengthOf(const Napi::TypedArray& a, const Napi::Env& env, const char* op) {
  if (a.ElementLength() > static_cast<size_t>(INT32_MAX)) {
    throw Napi::RangeError::New(env, std::string(op) + ": array too long");
  }
  return static_cast<int32_t>(a.ElementLength());
}

template <typename TA, typename T>
inline TA copyOut(const Napi::Env& env, const std::vector<T>& values) {
  TA out = TA::New(env, values.size());
  if (!values.empty()) std::memcpy(out.Data(), values.data(), values.size() * sizeof(T));
  return out;
}

}  // namespace cachesage::napi
