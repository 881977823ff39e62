// The C ABI's runtime client (cachesage.h, "runtime client"): the sidecar's
// JSON routes (docs/serving.md) behind plain C functions.
//
// JSON rather than the msgpack batch endpoint: every reply of the JSON
// routes, success or refusal, has one shape per verb and carries its own
// copy plan, and a refusal's message (naming the field) comes back the
// same way for every verb; one strict parser covers it all.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cachesage.h"
#include "capi_util.h"
#include "runtime_client_checks.h"
#include "runtime_client_http.h"
#include "runtime_client_json.h"

using namespace cachesage::capi;

namespace {

constexpr int kDefaultTimeoutMs = 30000;
constexpr int64_t kInt32Max = 0x7fffffff;

struct PendingCopies {
  std::vector<uint8_t> srcTier, dstTier;
  std::vector<int32_t> srcSlot, dstSlot, stageStarts;
};

}  // namespace

struct cs_runtime {
  std::unique_ptr<HttpConnection> http;
  std::string token;
  cs_runtime_info info{};
  char error[1024] = "";
  int32_t httpStatus = 0;
  PendingCopies copies;
  // Storage behind the last cs_prediction.
  std::vector<std::string> names;
  std::vector<cs_agent_probability> entries;
  cs_prediction prediction{};
};

namespace {

// guarded() (capi_util.h) plus the client's own errors, each its status.
template <typename Body>
int32_t guardedClient(char* err, size_t errSize, Body&& body) noexcept {
  return guarded(err, errSize, [&]() -> int32_t {
    try {
      return body();
    } catch (const IoError& e) {
      copyMessage(err, errSize, e.what());
      return CS_ERR_IO;
    } catch (const ProtocolError& e) {
      copyMessage(err, errSize, e.what());
      return CS_ERR_PROTOCOL;
    } catch (const Refused& e) {
      copyMessage(err, errSize, e.what());
      return e.status;
    }
  });
}

template <typename Body>
int32_t call(cs_runtime* rt, Body&& body) noexcept {
  if (rt == nullptr) return CS_ERR_INVALID_ARGUMENT;
  rt->httpStatus = 0;
  return guardedClient(rt->error, sizeof rt->error, body);
}

// Prefixes the verb to the errors of a call's body.
template <typename Body>
auto inVerb(const char* verb, Body&& body) -> decltype(body()) {
  const std::string prefix = std::string(verb) + ": ";
  try {
    return body();
  } catch (const IoError& e) {
    throw IoError(prefix + e.what());
  } catch (const ProtocolError& e) {
    throw ProtocolError(prefix + e.what());
  }
}

// Sends one request; returns the parsed 2xx reply, throws Refused for a
// refusal with the sidecar's message, ProtocolError for anything else.
JsonValue exchange(cs_runtime* rt, const char* verb, const char* method, const std::string& path,
                   const std::string& body) {
  const HttpReply reply =
      inVerb(verb, [&] { return rt->http->request(method, path, body, rt->token); });
  rt->httpStatus = reply.status;
  if (reply.status >= 200 && reply.status < 300) {
    return inVerb(verb, [&] { return parseJson(reply.body); });
  }
  std::string message;
  try {
    const JsonValue error = parseJson(reply.body);
    const JsonValue* m = error.find("message");
    if (m != nullptr && m->kind == JsonValue::Kind::String) message = m->string;
  } catch (const ProtocolError&) {
  }
  if (message.empty()) message = "(no message) " + printable(reply.body);
  throw Refused(statusFor(reply.status), std::string(verb) + ": sidecar answered " +
                                             std::to_string(reply.status) + ": " + message);
}

int64_t blocksFor(const cs_runtime* rt, int64_t tokens) {
  return (tokens + rt->info.block_size - 1) / rt->info.block_size;
}

// Appends a reply's "copies" to the handle's queue, after checking all of
// it: a garbled plan must not reach an engine's data plane.
void queueCopies(cs_runtime* rt, const JsonValue& reply, const std::string& where) {
  const JsonValue& copies = member(reply, "copies", where);
  const std::string w = where + ": copies";
  const int64_t maxSlot = std::max(rt->info.device_blocks, rt->info.host_blocks) - 1;
  const auto srcTier = intArrayMember(copies, "srcTier", CS_TIER_DEVICE, CS_TIER_HOST, w);
  const auto dstTier = intArrayMember(copies, "dstTier", CS_TIER_DEVICE, CS_TIER_HOST, w);
  const auto srcSlot = intArrayMember(copies, "srcSlot", 0, maxSlot, w);
  const auto dstSlot = intArrayMember(copies, "dstSlot", 0, maxSlot, w);
  const auto stages = intArrayMember(copies, "stageStarts", 0, kInt32Max, w);
  const size_t n = srcTier.size();
  if (dstTier.size() != n || srcSlot.size() != n || dstSlot.size() != n) {
    throw ProtocolError(w + ": srcTier, srcSlot, dstTier and dstSlot differ in length");
  }
  for (size_t i = 0; i < n; ++i) {
    const auto capacityOf = [&](int32_t tier) {
      return tier == CS_TIER_DEVICE ? rt->info.device_blocks : rt->info.host_blocks;
    };
    if (srcSlot[i] >= capacityOf(srcTier[i]) || dstSlot[i] >= capacityOf(dstTier[i])) {
      throw ProtocolError(w + ": copy " + str(static_cast<int64_t>(i)) +
                          " names a slot out of its tier");
    }
  }
  // Stages: ascending starts, the first at 0, none past the end.
  if (n > 0 && (stages.empty() || stages[0] != 0))
    throw ProtocolError(w + ": stageStarts must start at 0");
  for (size_t k = 0; k < stages.size(); ++k) {
    if (static_cast<size_t>(stages[k]) >= n || (k > 0 && stages[k] <= stages[k - 1])) {
      throw ProtocolError(w + ": stageStarts must ascend within the copies");
    }
  }
  PendingCopies& q = rt->copies;
  if (q.srcTier.size() + n > static_cast<size_t>(kInt32Max)) {
    throw std::length_error(where + ": more than 2^31 copies queued; take the copy plan");
  }
  const auto offset = static_cast<int32_t>(q.srcTier.size());
  for (size_t i = 0; i < n; ++i) {
    q.srcTier.push_back(static_cast<uint8_t>(srcTier[i]));
    q.dstTier.push_back(static_cast<uint8_t>(dstTier[i]));
    q.srcSlot.push_back(srcSlot[i]);
    q.dstSlot.push_back(dstSlot[i]);
  }
  for (const int32_t start : stages) q.stageStarts.push_back(offset + start);
}

int64_t blockIdMax(const cs_runtime* rt) {
  return int64_t{rt->info.device_blocks} + rt->info.host_blocks - 1;
}

}  // namespace

extern "C" {

int32_t cs_runtime_connect(const char* host, int32_t port, const char* token, int32_t timeout_ms,
                           cs_runtime** out, char* err, size_t err_size) {
  if (out != nullptr) *out = nullptr;
  std::unique_ptr<cs_runtime> rt;
  const int32_t status = guardedClient(err, err_size, [&]() -> int32_t {
    const char* op = "connect";
    requireNonNull(out, op, "out");
    requireNonNull(host, op, "host");
    if (port < 1 || port > 65535)
      throw std::out_of_range("connect: port must be in [1, 65535], got " + str(port));
    if (timeout_ms < 0)
      throw std::out_of_range("connect: timeout_ms must be >= 0, got " + str(timeout_ms));
    rt = std::make_unique<cs_runtime>();
    if (token != nullptr) {
      rt->token = token;
      for (const char c : rt->token) {
        // A header line must stay one line.
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
          throw std::invalid_argument("connect: token must not hold spaces or control characters");
        }
      }
    }
    rt->http = inVerb(op, [&] {
      return std::make_unique<HttpConnection>(host, port,
                                              timeout_ms == 0 ? kDefaultTimeoutMs : timeout_ms);
    });
    const JsonValue info = exchange(rt.get(), op, "GET", "/v1/info", "");
    const std::string where = "connect: /v1/info reply";
    rt->info.block_size = static_cast<int32_t>(intMember(info, "blockSize", 1, 1 << 20, where));
    rt->info.device_blocks =
        static_cast<int32_t>(intMember(info, "deviceBlocks", 1, kInt32Max, where));
    rt->info.host_blocks = static_cast<int32_t>(intMember(info, "hostBlocks", 0, kInt32Max, where));
    if (int64_t{rt->info.device_blocks} + rt->info.host_blocks > kInt32Max) {
      throw ProtocolError(where + ": more blocks than int32 ids");
    }
    return CS_OK;
  });
  if (status != CS_OK) return status;
  *out = rt.release();
  return CS_OK;
}

void cs_runtime_close(cs_runtime* rt) { delete rt; }

const char* cs_runtime_last_error(const cs_runtime* rt) {
  return rt == nullptr ? "cs_runtime_last_error: rt is NULL" : rt->error;
}

int32_t cs_runtime_http_status(const cs_runtime* rt) { return rt == nullptr ? 0 : rt->httpStatus; }

int32_t cs_runtime_get_info(const cs_runtime* rt, cs_runtime_info* out) {
  if (rt == nullptr || out == nullptr) return CS_ERR_INVALID_ARGUMENT;
  *out = rt->info;
  return CS_OK;
}

int32_t cs_runtime_observe(cs_runtime* rt, int32_t type, double time, const char* session,
                           const char* workload, const char* agent, const char* tool) {
  return call(rt, [&]() -> int32_t {
    const char* name = observeType(type);
    if (name == nullptr)
      throw std::invalid_argument("observe: type must be a CS_OBSERVE_* code (1..6), got " +
                                  str(type));
    if (!std::isfinite(time) || time < 0)
      throw std::invalid_argument("observe: time must be finite and >= 0");
    const bool tagged = type != CS_OBSERVE_SESSION_START && type != CS_OBSERVE_SESSION_END;
    const bool isTool = type == CS_OBSERVE_TOOL_START || type == CS_OBSERVE_TOOL_END;
    checkField(session, true, name, "session");
    checkField(workload, type != CS_OBSERVE_SESSION_END, name, "workload");
    checkField(agent, tagged, name, "agent");
    checkField(tool, isTool, name, "tool");
    JsonWriter w;
    w.beginObject().key("type").string(name).key("time").number(time).key("session").string(
        session);
    if (type == CS_OBSERVE_SESSION_START) w.key("workload").string(workload);
    if (tagged)
      w.key("agent")
          .beginObject()
          .key("workload")
          .string(workload)
          .key("agent")
          .string(agent)
          .endObject();
    if (isTool) w.key("tool").string(tool);
    w.endObject();
    const JsonValue reply = exchange(rt, "observe", "POST", "/v1/events", w.text());
    const std::string where = "observe: reply";
    if (boolMember(reply, "applied", where)) return 1;
    copyMessage(rt->error, sizeof rt->error, stringMember(reply, "ignored", where).c_str());
    return 0;
  });
}

int32_t cs_runtime_admit(cs_runtime* rt, int64_t request_id, const uint64_t* hashes,
                         int32_t hash_count, int32_t num_tokens, const char* session,
                         const char* workload, const char* agent, double time, int32_t* block_ids,
                         int32_t* block_table, int32_t capacity, cs_runtime_admission* result) {
  return call(rt, [&]() -> int32_t {
    const char* op = "admit";
    requireRequestId(request_id, op);
    requireArray(hashes, hash_count, op, "hashes");
    if (num_tokens < 1)
      throw std::out_of_range("admit: num_tokens must be >= 1, got " + str(num_tokens));
    if ((workload == nullptr) != (agent == nullptr))
      throw std::invalid_argument("admit: workload and agent go together (both or neither)");
    const int64_t blocks = blocksFor(rt, num_tokens);
    checkOutput(block_ids, capacity, blocks, op, "block_ids");
    checkOutput(block_table, capacity, blocks, op, "block_table");
    JsonWriter w;
    w.beginObject().key("requestId").integer(request_id);
    writeHashes(w, hashes, hash_count);
    w.key("numTokens").integer(num_tokens);
    if (session != nullptr) w.key("session").string(session);
    if (agent != nullptr)
      w.key("agent")
          .beginObject()
          .key("workload")
          .string(workload)
          .key("agent")
          .string(agent)
          .endObject();
    writeTime(w, "time", time, op);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/admit", w.text());
    const std::string where = "admit: reply";
    // Copies first: a refusal for room may still have queued some.
    queueCopies(rt, reply, where);
    if (!boolMember(reply, "admitted", where)) return 0;
    const auto ids = intArrayMember(reply, "blockIds", 0, blockIdMax(rt), where);
    const auto table = intArrayMember(reply, "blockTable", 0, rt->info.device_blocks - 1, where);
    if (static_cast<int64_t>(ids.size()) != blocks || table.size() != ids.size()) {
      throw ProtocolError("admit: reply: " + str(static_cast<int64_t>(ids.size())) +
                          " block ids and " + str(static_cast<int64_t>(table.size())) +
                          " slots for a request of " + str(blocks) + " blocks");
    }
    const auto cached = intMember(reply, "cachedDeviceTokens", 0, num_tokens, where);
    const auto loaded = intMember(reply, "loadedBlocks", 0, blocks, where);
    writeIds(ids, block_ids, capacity, op, "block ids");
    writeIds(table, block_table, capacity, op, "slots");
    if (result != nullptr) {
      result->cached_device_tokens = static_cast<int32_t>(cached);
      result->loaded_blocks = static_cast<int32_t>(loaded);
      result->num_blocks = static_cast<int32_t>(blocks);
    }
    return 1;
  });
}

int32_t cs_runtime_prefill_done(cs_runtime* rt, int64_t request_id, double time, int32_t* block_ids,
                                int32_t capacity, int32_t* num_blocks) {
  return call(rt, [&]() -> int32_t {
    const char* op = "prefill_done";
    requireRequestId(request_id, op);
    requireCapacity(capacity, op);
    JsonWriter w;
    w.beginObject().key("requestId").integer(request_id);
    writeTime(w, "time", time, op);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/prefill-done", w.text());
    const std::string where = "prefill_done: reply";
    queueCopies(rt, reply, where);
    const auto ids = intArrayMember(reply, "blockIds", 0, blockIdMax(rt), where);
    if (num_blocks != nullptr) *num_blocks = static_cast<int32_t>(ids.size());
    writeIds(ids, block_ids, capacity, op, "block ids");
    return CS_OK;
  });
}

int32_t cs_runtime_decode(cs_runtime* rt, int64_t request_id, int32_t tokens,
                          const uint64_t* hashes, int32_t hash_count, double time,
                          int32_t* new_block_ids, int32_t capacity, int32_t* num_new) {
  return call(rt, [&]() -> int32_t {
    const char* op = "decode";
    requireRequestId(request_id, op);
    requireArray(hashes, hash_count, op, "hashes");
    if (tokens < 0) throw std::out_of_range("decode: tokens must be >= 0, got " + str(tokens));
    const int64_t most = blocksFor(rt, tokens);
    checkOutput(new_block_ids, capacity, most, op, "new_block_ids");
    JsonWriter w;
    w.beginObject().key("requestId").integer(request_id).key("tokens").integer(tokens);
    if (hash_count > 0) writeHashes(w, hashes, hash_count);
    writeTime(w, "time", time, op);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/decode", w.text());
    const std::string where = "decode: reply";
    queueCopies(rt, reply, where);
    if (num_new != nullptr) *num_new = 0;
    if (!boolMember(reply, "appended", where)) return 0;
    const auto ids = intArrayMember(reply, "blockIds", 0, blockIdMax(rt), where);
    if (static_cast<int64_t>(ids.size()) > most)
      throw ProtocolError("decode: reply: more new blocks than the tokens fill");
    writeIds(ids, new_block_ids, capacity, op, "new block ids");
    if (num_new != nullptr) *num_new = static_cast<int32_t>(ids.size());
    return 1;
  });
}

int32_t cs_runtime_release(cs_runtime* rt, int64_t request_id, double time) {
  return call(rt, [&]() -> int32_t {
    const char* op = "release";
    requireRequestId(request_id, op);
    JsonWriter w;
    w.beginObject().key("requestId").integer(request_id);
    writeTime(w, "time", time, op);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/release", w.text());
    queueCopies(rt, reply, "release: reply");
    if (!boolMember(reply, "released", "release: reply"))
      throw ProtocolError("release: reply: released is false");
    return CS_OK;
  });
}

int32_t cs_runtime_act(cs_runtime* rt, double now, cs_act_result* result) {
  return call(rt, [&]() -> int32_t {
    const char* op = "act";
    JsonWriter w;
    w.beginObject();
    writeTime(w, "now", now, op);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/act", w.text());
    const std::string where = "act: reply";
    queueCopies(rt, reply, where);
    const JsonValue& actions = member(reply, "actions", where);
    if (actions.kind != JsonValue::Kind::Array)
      throw ProtocolError(where + ": field \"actions\" must be an array");
    cs_act_result r{};
    r.demoted = static_cast<int32_t>(intMember(reply, "demoted", 0, kInt32Max, where));
    r.evicted = static_cast<int32_t>(intMember(reply, "evicted", 0, kInt32Max, where));
    r.prefetched = static_cast<int32_t>(intMember(reply, "prefetched", 0, kInt32Max, where));
    r.pinned = static_cast<int32_t>(intMember(reply, "pinned", 0, kInt32Max, where));
    r.unpinned = static_cast<int32_t>(intMember(reply, "unpinned", 0, kInt32Max, where));
    r.num_actions = static_cast<int32_t>(std::min<size_t>(actions.items.size(), kInt32Max));
    if (result != nullptr) *result = r;
    return CS_OK;
  });
}

int32_t cs_runtime_predict(cs_runtime* rt, const char* session, int32_t horizon,
                           const cs_prediction** out) {
  return call(rt, [&]() -> int32_t {
    const char* op = "predict";
    requireNonNull(out, op, "out");
    *out = nullptr;
    requireName(session, op, "session");
    if (horizon < 0 || horizon > 256)
      throw std::out_of_range("predict: horizon must be in [0, 256] (0: default), got " +
                              str(horizon));
    JsonWriter w;
    w.beginObject().key("session").string(session);
    if (horizon > 0) w.key("horizon").integer(horizon);
    w.endObject();
    const JsonValue reply = exchange(rt, op, "POST", "/v1/predict", w.text());
    const std::string where = "predict: reply: prediction";
    const JsonValue& p = member(reply, "prediction", "predict: reply");
    if (p.isNull()) return 0;
    // Everything read before the handle's storage changes, so a bad reply
    // leaves the previous prediction as it was.
    const std::string& sessionName = stringMember(p, "session", where);
    const std::string& workload = stringMember(p, "workload", where);
    const JsonValue& current = member(p, "currentAgent", where);
    if (!current.isNull() && current.kind != JsonValue::Kind::String)
      throw ProtocolError(where + ": currentAgent must be a string or null");
    const auto h = intMember(p, "horizon", 1, 256, where);
    const double alive = numberMember(p, "alive", where);
    const JsonValue& seconds = member(p, "secondsToNextStep", where);
    if (!seconds.isNull() && seconds.kind != JsonValue::Kind::Number)
      throw ProtocolError(where + ": secondsToNextStep must be a number or null");
    const auto next = probabilities(p, "next", where);
    const auto reuse = probabilities(p, "reuseWithin", where);

    rt->names.clear();
    rt->entries.clear();
    rt->names.reserve(3 + next.size() + reuse.size());
    rt->names.push_back(sessionName);
    rt->names.push_back(workload);
    rt->names.push_back(current.isNull() ? std::string() : current.string);
    for (const auto& [agent, probability] : next) rt->names.push_back(agent);
    for (const auto& [agent, probability] : reuse) rt->names.push_back(agent);
    rt->entries.reserve(next.size() + reuse.size());
    size_t name = 3;
    for (const auto& [agent, probability] : next)
      rt->entries.push_back({rt->names[name++].c_str(), probability});
    for (const auto& [agent, probability] : reuse)
      rt->entries.push_back({rt->names[name++].c_str(), probability});
    cs_prediction& prediction = rt->prediction;
    prediction.session = rt->names[0].c_str();
    prediction.workload = rt->names[1].c_str();
    prediction.current_agent = current.isNull() ? nullptr : rt->names[2].c_str();
    prediction.horizon = static_cast<int32_t>(h);
    prediction.alive = alive;
    prediction.has_seconds_to_next_step = seconds.isNull() ? 0 : 1;
    prediction.seconds_to_next_step = seconds.isNull() ? 0 : seconds.number;
    prediction.num_next = static_cast<int32_t>(next.size());
    prediction.next = rt->entries.data();
    prediction.num_reuse_within = static_cast<int32_t>(reuse.size());
    prediction.reuse_within = rt->entries.data() + next.size();
    *out = &rt->prediction;
    return 1;
  });
}

int32_t cs_runtime_pending_copy_plan(const cs_runtime* rt, int32_t* count, int32_t* num_stages) {
  if (rt == nullptr) return CS_ERR_INVALID_ARGUMENT;
  if (count != nullptr) *count = static_cast<int32_t>(rt->copies.srcTier.size());
  if (num_stages != nullptr) *num_stages = static_cast<int32_t>(rt->copies.stageStarts.size());
  return CS_OK;
}

int32_t cs_runtime_take_copy_plan(cs_runtime* rt, cs_copy_plan* plan) {
  return call(rt, [&]() -> int32_t {
    const char* op = "take_copy_plan";
    requireNonNull(plan, op, "plan");
    requireCapacity(plan->capacity, op);
    PendingCopies& q = rt->copies;
    const auto count = static_cast<int32_t>(q.srcTier.size());
    const auto stages = static_cast<int32_t>(q.stageStarts.size());
    plan->count = count;
    plan->num_stages = stages;
    if (count > plan->capacity ||
        (plan->stage_starts != nullptr && stages > plan->stage_capacity)) {
      throw BufferTooSmall("take_copy_plan: " + str(count) + " copies in " + str(stages) +
                           " stages do not fit a plan of " + str(plan->capacity) + " copies and " +
                           str(plan->stage_starts == nullptr ? 0 : plan->stage_capacity) +
                           " stages");
    }
    if (count > 0) {
      requireNonNull(plan->src_tier, op, "plan->src_tier");
      requireNonNull(plan->src_slot, op, "plan->src_slot");
      requireNonNull(plan->dst_tier, op, "plan->dst_tier");
      requireNonNull(plan->dst_slot, op, "plan->dst_slot");
      std::memcpy(plan->src_tier, q.srcTier.data(), q.srcTier.size());
      std::memcpy(plan->dst_tier, q.dstTier.data(), q.dstTier.size());
      std::memcpy(plan->src_slot, q.srcSlot.data(), q.srcSlot.size() * sizeof(int32_t));
      std::memcpy(plan->dst_slot, q.dstSlot.data(), q.dstSlot.size() * sizeof(int32_t));
    }
    if (plan->stage_starts != nullptr && stages > 0) {
      std::memcpy(plan->stage_starts, q.stageStarts.data(), q.stageStarts.size() * sizeof(int32_t));
    }
    q = PendingCopies();
    return CS_OK;
  });
}

}  // extern "C"
