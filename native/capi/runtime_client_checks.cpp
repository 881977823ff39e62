#include "runtime_client_checks.h"

#include <cmath>
#include <cstring>

#include "cachesage.h"
#include "capi_util.h"

namespace cachesage::capi {

namespace {

constexpr int64_t kMaxRequestId = (int64_t{1} << 52) - 1;

}  // namespace

int32_t statusFor(int http) {
  if (http == 401 || http == 403) return CS_ERR_DENIED;
  if (http == 429 || http == 503) return CS_ERR_BUSY;
  if (http >= 400 && http < 500) return CS_ERR_INVALID_ARGUMENT;
  if (http >= 500) return CS_ERR_INTERNAL;
  // 1xx and 3xx: the sidecar never answers so.
  return CS_ERR_PROTOCOL;
}

std::string printable(const std::string& body) {
  std::string out;
  for (size_t i = 0; i < body.size() && out.size() < 120; ++i) {
    const char c = body[i];
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

void requireName(const char* value, const char* verb, const char* name) {
  if (value == nullptr) throw std::invalid_argument(std::string(verb) + ": " + name + " is NULL");
}

void requireRequestId(int64_t id, const char* verb) {
  if (id < 0 || id > kMaxRequestId) {
    throw std::out_of_range(std::string(verb) + ": request_id must be in [0, 2^52), got " +
                            str(id));
  }
}

void writeTime(JsonWriter& w, const char* field, double time, const char* verb) {
  if (!std::isfinite(time)) {
    throw std::invalid_argument(std::string(verb) + ": " + field + " must be finite");
  }
  if (time >= 0) w.key(field).number(time);
}

void writeHashes(JsonWriter& w, const uint64_t* hashes, int32_t count) {
  w.key("hashes").beginArray();
  for (int32_t i = 0; i < count; ++i) w.hash(hashes[i]);
  w.endArray();
}

void checkOutput(const void* buffer, int32_t capacity, int64_t needed, const char* verb,
                 const char* name) {
  requireCapacity(capacity, verb);
  if (buffer != nullptr && capacity < needed) {
    throw std::invalid_argument(std::string(verb) + ": " + name + " holds " + str(capacity) +
                                " entries but the request has " + str(needed) + " blocks");
  }
}

void writeIds(const std::vector<int32_t>& ids, int32_t* out, int32_t capacity, const char* verb,
              const char* name) {
  if (out == nullptr) return;
  if (ids.size() > static_cast<size_t>(capacity)) {
    throw BufferTooSmall(std::string(verb) + ": " + str(static_cast<int64_t>(ids.size())) + " " +
                         name + " but the buffer holds " + str(capacity) +
                         " (the call took effect)");
  }
  if (!ids.empty()) std::memcpy(out, ids.data(), ids.size() * sizeof(int32_t));
}

const char* observeType(int32_t type) {
  switch (type) {
    case CS_OBSERVE_SESSION_START:
      return "session.start";
    case CS_OBSERVE_STEP_START:
      return "step.start";
    case CS_OBSERVE_STEP_END:
      return "step.end";
    case CS_OBSERVE_TOOL_START:
      return "tool.start";
    case CS_OBSERVE_TOOL_END:
      return "tool.end";
    case CS_OBSERVE_SESSION_END:
      return "session.end";
    default:
      return nullptr;
  }
}

void checkField(const char* value, bool wanted, const char* type, const char* name) {
  if (wanted && value == nullptr) {
    throw std::invalid_argument(std::string("observe: ") + type + " needs " + name + ", got NULL");
  }
  if (!wanted && value != nullptr) {
    throw std::invalid_argument(std::string("observe: ") + type + " takes no " + name +
                                " (pass NULL)");
  }
}

std::vector<std::pair<std::string, double>> probabilities(const JsonValue& prediction,
                                                          const char* key,
                                                          const std::string& where) {
  const JsonValue& map = member(prediction, key, where);
  if (map.kind != JsonValue::Kind::Object) {
    throw ProtocolError(where + ": field \"" + key + "\" must be an object");
  }
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [agent, p] : map.members) {
    if (p.kind != JsonValue::Kind::Number) {
      throw ProtocolError(where + ": " + key + "[\"" + agent + "\"] must be a number");
    }
    out.emplace_back(agent, p.number);
  }
  return out;
}

}  // namespace cachesage::capi
