// The runtime client's checks (cachesage.h, "runtime client"): of the
// caller's arguments before a request goes out, and of what a reply or a
// refusal says, with the status each maps to. Internal to libcachesage;
// runtime_client_c.cpp holds the verbs that use them.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime_client_json.h"

namespace cachesage::capi {

// A verb the sidecar answered with an error status.
class Refused : public std::runtime_error {
 public:
  Refused(int32_t code, const std::string& message) : std::runtime_error(message), status(code) {}
  int32_t status;
};

// The C status for an HTTP error status of the sidecar.
int32_t statusFor(int http);

// Printable prefix of a body that is not the error JSON, for the message.
std::string printable(const std::string& body);

void requireName(const char* value, const char* verb, const char* name);
void requireRequestId(int64_t id, const char* verb);

// Adds "time" unless the caller asked for the sidecar's clock.
void writeTime(JsonWriter& w, const char* field, double time, const char* verb);
void writeHashes(JsonWriter& w, const uint64_t* hashes, int32_t count);

void checkOutput(const void* buffer, int32_t capacity, int64_t needed, const char* verb, const char* name);
// Copies a reply array into a caller buffer, or reports the size it needs.
void writeIds(const std::vector<int32_t>& ids, int32_t* out, int32_t capacity, const char* verb,
              const char* name);

// The event type's name on the wire, or NULL for an unknown CS_OBSERVE_* value.
const char* observeType(int32_t type);
// Each event type's fields: required when named, NULL otherwise.
void checkField(const char* value, bool wanted, const char* type, const char* name);

// A prediction's agent -> probability object under `key`.
std::vector<std::pair<std::string, double>> probabilities(const JsonValue& prediction, const char* key,
                                                          const std::string& where);

}  // namespace cachesage::capi
