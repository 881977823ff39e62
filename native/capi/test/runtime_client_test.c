/*
 * The runtime client (cachesage.h, "runtime client") from C, run by
 * test/native/runtime_client.test.ts:
 *
 *   runtime_client_test scenario HOST PORT [TOKEN]
 *     one agent session against a real sidecar (16 device blocks, 8 host
 *     blocks of 4 tokens); prints one JSON line per call, which the test
 *     compares with an in-process Runtime fed the same events, then the
 *     refusals (each status and message) of calls the sidecar refuses.
 *   runtime_client_test garbage HOST PORT ROUNDS
 *     against a peer that answers /v1/info and then garbage: every verb,
 *     ROUNDS times; each call must fail with a status and a message.
 *   runtime_client_test keepalive HOST PORT
 *     against a peer that drops idle connections and never answers act:
 *     reconnects without sending a verb twice, and timeouts.
 *
 * Exit status 0 when every check held; 1 with "FAIL: ..." on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachesage.h"

static int failures = 0;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      failures++;                                          \
    }                                                      \
  } while (0)

#define BLOCK_SIZE 4
#define MAX_BLOCKS 64

static void print_string(const char* s) {
  putchar('"');
  for (; *s != '\0'; s++) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20 || c == 0x7f)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

static void print_field(const char* name, const char* value) {
  printf(",\"%s\":", name);
  if (value == NULL)
    printf("null");
  else
    print_string(value);
}

static void print_ints(const char* name, const int32_t* values, int32_t n) {
  int32_t i;
  printf(",\"%s\":[", name);
  for (i = 0; i < n; i++) printf(i == 0 ? "%d" : ",%d", (int)values[i]);
  putchar(']');
}

static void print_probabilities(const char* name, const cs_agent_probability* p, int32_t n) {
  int32_t i;
  printf(",\"%s\":{", name);
  for (i = 0; i < n; i++) {
    if (i > 0) putchar(',');
    print_string(p[i].agent);
    /* %.17g reads back as the same double. */
    printf(":%.17g", p[i].probability);
  }
  putchar('}');
}

/* Hashes of a prompt of `count` tokens: token t is base + t, so prompts
 * with the same base share their leading blocks. */
static int32_t prompt_hashes(uint32_t base, int32_t count, uint64_t* out) {
  uint32_t tokens[MAX_BLOCKS * BLOCK_SIZE];
  int32_t written = 0;
  int32_t i;
  char err[256];
  for (i = 0; i < count; i++) tokens[i] = base + (uint32_t)i;
  CHECK(cs_hash_token_blocks(tokens, count, BLOCK_SIZE, 0, out, MAX_BLOCKS, &written, err,
                             sizeof err) == CS_OK,
        "hash_token_blocks: %s", err);
  return written;
}

static void print_hashes(const char* name, const uint64_t* hashes, int32_t n) {
  int32_t i;
  printf(",\"%s\":[", name);
  for (i = 0; i < n; i++)
    printf(i == 0 ? "\"0x%016llx\"" : ",\"0x%016llx\"", (unsigned long long)hashes[i]);
  putchar(']');
}

static void observe(cs_runtime* rt, int32_t type, double time, const char* session,
                    const char* workload, const char* agent, const char* tool) {
  const int32_t status = cs_runtime_observe(rt, type, time, session, workload, agent, tool);
  CHECK(status >= 0, "observe %d: %s", (int)type, cs_runtime_last_error(rt));
  printf("{\"call\":\"observe\",\"type\":%d,\"time\":%.17g", (int)type, time);
  print_field("session", session);
  print_field("workload", workload);
  print_field("agent", agent);
  print_field("tool", tool);
  printf(",\"applied\":%d", (int)status);
  if (status == 0) {
    printf(",\"ignored\":");
    print_string(cs_runtime_last_error(rt));
  }
  printf("}\n");
}

static void admit(cs_runtime* rt, int64_t id, uint32_t base, int32_t num_tokens,
                  const char* session, const char* agent, double time) {
  uint64_t hashes[MAX_BLOCKS];
  int32_t ids[MAX_BLOCKS];
  int32_t table[MAX_BLOCKS];
  cs_runtime_admission result;
  const int32_t n = prompt_hashes(base, num_tokens, hashes);
  const int32_t status = cs_runtime_admit(rt, id, hashes, n, num_tokens, session, "dev", agent,
                                          time, ids, table, MAX_BLOCKS, &result);
  CHECK(status >= 0, "admit %lld: %s", (long long)id, cs_runtime_last_error(rt));
  printf("{\"call\":\"admit\",\"requestId\":%lld,\"numTokens\":%d,\"time\":%.17g", (long long)id,
         (int)num_tokens, time);
  print_field("session", session);
  print_field("agent", agent);
  print_hashes("hashes", hashes, n);
  printf(",\"admitted\":%d", (int)status);
  if (status == 1) {
    printf(",\"cachedDeviceTokens\":%d,\"loadedBlocks\":%d", (int)result.cached_device_tokens,
           (int)result.loaded_blocks);
    print_ints("blockIds", ids, result.num_blocks);
    print_ints("blockTable", table, result.num_blocks);
  }
  printf("}\n");
}

static void prefill_done(cs_runtime* rt, int64_t id, double time) {
  int32_t ids[MAX_BLOCKS];
  int32_t n = -1;
  const int32_t status = cs_runtime_prefill_done(rt, id, time, ids, MAX_BLOCKS, &n);
  CHECK(status == CS_OK, "prefill_done %lld: %s", (long long)id, cs_runtime_last_error(rt));
  printf("{\"call\":\"prefill_done\",\"requestId\":%lld,\"time\":%.17g", (long long)id, time);
  print_ints("blockIds", ids, status == CS_OK ? n : 0);
  printf("}\n");
}

static void decode(cs_runtime* rt, int64_t id, uint32_t base, int32_t total_tokens, int32_t tokens,
                   int32_t first_new_block, double time) {
  uint64_t hashes[MAX_BLOCKS];
  int32_t ids[MAX_BLOCKS];
  int32_t n_new = -1;
  const int32_t n = prompt_hashes(base, total_tokens, hashes);
  const int32_t status = cs_runtime_decode(rt, id, tokens, hashes + first_new_block,
                                           n - first_new_block, time, ids, MAX_BLOCKS, &n_new);
  CHECK(status >= 0, "decode %lld: %s", (long long)id, cs_runtime_last_error(rt));
  printf("{\"call\":\"decode\",\"requestId\":%lld,\"tokens\":%d,\"time\":%.17g", (long long)id,
         (int)tokens, time);
  print_hashes("hashes", hashes + first_new_block, n - first_new_block);
  printf(",\"appended\":%d", (int)status);
  if (status == 1) print_ints("blockIds", ids, n_new);
  printf("}\n");
}

static void release(cs_runtime* rt, int64_t id, double time) {
  const int32_t status = cs_runtime_release(rt, id, time);
  CHECK(status == CS_OK, "release %lld: %s", (long long)id, cs_runtime_last_error(rt));
  printf("{\"call\":\"release\",\"requestId\":%lld,\"time\":%.17g}\n", (long long)id, time);
}

static void act(cs_runtime* rt, double now) {
  cs_act_result r;
  const int32_t status = cs_runtime_act(rt, now, &r);
  CHECK(status == CS_OK, "act: %s", cs_runtime_last_error(rt));
  if (status != CS_OK) memset(&r, 0, sizeof r);
  printf(
      "{\"call\":\"act\",\"now\":%.17g,\"demoted\":%d,\"evicted\":%d,\"prefetched\":%d,\"pinned\":%"
      "d,"
      "\"unpinned\":%d,\"actions\":%d}\n",
      now, (int)r.demoted, (int)r.evicted, (int)r.prefetched, (int)r.pinned, (int)r.unpinned,
      (int)r.num_actions);
}

static void predict(cs_runtime* rt, const char* session, int32_t horizon) {
  const cs_prediction* p = NULL;
  const int32_t status = cs_runtime_predict(rt, session, horizon, &p);
  CHECK(status >= 0, "predict: %s", cs_runtime_last_error(rt));
  printf("{\"call\":\"predict\",\"horizon\":%d", (int)horizon);
  print_field("session", session);
  if (status == 1 && p != NULL) {
    printf(",\"prediction\":{\"session\":");
    print_string(p->session);
    printf(",\"workload\":");
    print_string(p->workload);
    printf(",\"currentAgent\":");
    if (p->current_agent == NULL)
      printf("null");
    else
      print_string(p->current_agent);
    print_probabilities("next", p->next, p->num_next);
    print_probabilities("reuseWithin", p->reuse_within, p->num_reuse_within);
    printf(",\"alive\":%.17g,\"horizon\":%d,\"secondsToNextStep\":", p->alive, (int)p->horizon);
    if (p->has_seconds_to_next_step)
      printf("%.17g", p->seconds_to_next_step);
    else
      printf("null");
    printf("}");
  } else {
    printf(",\"prediction\":null");
  }
  printf("}\n");
}

static void take_copies(cs_runtime* rt) {
  uint8_t src_tier[256], dst_tier[256];
  int32_t src_slot[256], dst_slot[256], stages[256];
  int32_t count = -1, num_stages = -1, i;
  cs_copy_plan plan;
  plan.src_tier = src_tier;
  plan.src_slot = src_slot;
  plan.dst_tier = dst_tier;
  plan.dst_slot = dst_slot;
  plan.capacity = 256;
  plan.stage_starts = stages;
  plan.stage_capacity = 256;
  CHECK(cs_runtime_pending_copy_plan(rt, &count, &num_stages) == CS_OK, "pending_copy_plan");
  CHECK(cs_runtime_take_copy_plan(rt, &plan) == CS_OK, "take_copy_plan: %s",
        cs_runtime_last_error(rt));
  CHECK(plan.count == count && plan.num_stages == num_stages,
        "take_copy_plan: sizes differ from pending");
  printf("{\"call\":\"copies\"");
  printf(",\"srcTier\":[");
  for (i = 0; i < plan.count; i++) printf(i == 0 ? "%d" : ",%d", (int)src_tier[i]);
  printf("]");
  print_ints("srcSlot", src_slot, plan.count);
  printf(",\"dstTier\":[");
  for (i = 0; i < plan.count; i++) printf(i == 0 ? "%d" : ",%d", (int)dst_tier[i]);
  printf("]");
  print_ints("dstSlot", dst_slot, plan.count);
  print_ints("stageStarts", stages, plan.num_stages);
  printf("}\n");
  CHECK(cs_runtime_pending_copy_plan(rt, &count, &num_stages) == CS_OK && count == 0 &&
            num_stages == 0,
        "take_copy_plan: the queue is not empty after a take");
}

/* A refused call: its status and message, for the test to check. */
static void refusal(cs_runtime* rt, const char* what, int32_t status) {
  CHECK(status < 0, "%s: expected a refusal, got %d", what, (int)status);
  CHECK(cs_runtime_last_error(rt)[0] != '\0', "%s: refused without a message", what);
  printf("{\"refusal\":");
  print_string(what);
  printf(",\"status\":");
  print_string(cs_status_string(status));
  printf(",\"http\":%d,\"message\":", (int)cs_runtime_http_status(rt));
  print_string(cs_runtime_last_error(rt));
  printf("}\n");
}

/* A refused connect: no handle, the message is in err. */
static void connect_refusal(const char* host, const char* port, const char* token,
                            const char* what) {
  char err[512];
  cs_runtime* rt = (cs_runtime*)1;
  const int32_t status = cs_runtime_connect(host, atoi(port), token, 10000, &rt, err, sizeof err);
  CHECK(status < 0 && rt == NULL && err[0] != '\0', "%s: expected a refusal, got %d", what,
        (int)status);
  printf("{\"refusal\":");
  print_string(what);
  printf(",\"status\":");
  print_string(cs_status_string(status));
  printf(",\"http\":0,\"message\":");
  print_string(err);
  printf("}\n");
}

static int connect_to(const char* host, const char* port, const char* token, cs_runtime** rt) {
  char err[512];
  const int32_t status = cs_runtime_connect(host, atoi(port), token, 10000, rt, err, sizeof err);
  if (status != CS_OK) {
    fprintf(stderr, "FAIL: connect to %s:%s: %s: %s\n", host, port, cs_status_string(status), err);
    return 0;
  }
  return 1;
}

static int scenario(const char* host, const char* port, const char* token) {
  cs_runtime* rt = NULL;
  cs_runtime_info info;
  uint64_t hashes[MAX_BLOCKS];
  int32_t ids[MAX_BLOCKS];
  int32_t n;
  const cs_prediction* p = NULL;
  if (!connect_to(host, port, token, &rt)) return 1;
  CHECK(cs_runtime_get_info(rt, &info) == CS_OK, "get_info");
  printf("{\"call\":\"info\",\"blockSize\":%d,\"deviceBlocks\":%d,\"hostBlocks\":%d}\n",
         (int)info.block_size, (int)info.device_blocks, (int)info.host_blocks);

  observe(rt, CS_OBSERVE_SESSION_START, 1.0, "s1", "dev", NULL, NULL);
  observe(rt, CS_OBSERVE_STEP_START, 2.0, "s1", "dev", "planner", NULL);
  admit(rt, 1, 100, 14, "s1", "planner", 2.5);
  prefill_done(rt, 1, 3.0);
  decode(rt, 1, 100, 16, 2, 3, 3.5);
  observe(rt, CS_OBSERVE_TOOL_START, 3.75, "s1", "dev", "planner", "search");
  observe(rt, CS_OBSERVE_TOOL_END, 3.875, "s1", "dev", "planner", "search");
  release(rt, 1, 4.0);
  observe(rt, CS_OBSERVE_STEP_END, 4.25, "s1", "dev", "planner", NULL);
  act(rt, 4.5);
  predict(rt, "s1", 2);
  observe(rt, CS_OBSERVE_STEP_START, 5.0, "s1", "dev", "coder", NULL);
  /* The same first 12 tokens: the cached prefix is hit. */
  admit(rt, 2, 100, 22, "s1", "coder", 5.25);
  prefill_done(rt, 2, 5.5);
  release(rt, 2, 6.0);
  observe(rt, CS_OBSERVE_STEP_END, 6.25, "s1", "dev", "coder", NULL);
  /* Another session fills the device tier, so earlier blocks move to host. */
  observe(rt, CS_OBSERVE_SESSION_START, 7.0, "s2", "dev", NULL, NULL);
  observe(rt, CS_OBSERVE_STEP_START, 7.25, "s2", "dev", "planner", NULL);
  admit(rt, 3, 5000, 56, "s2", "planner", 7.5);
  prefill_done(rt, 3, 8.0);
  release(rt, 3, 8.5);
  observe(rt, CS_OBSERVE_STEP_END, 8.75, "s2", "dev", "planner", NULL);
  act(rt, 9.0);
  take_copies(rt);
  /* Back to s1's prompt: its blocks went to host, and act prefetched them for this step. */
  observe(rt, CS_OBSERVE_STEP_START, 10.0, "s1", "dev", "reviewer", NULL);
  admit(rt, 4, 100, 30, "s1", "reviewer", 10.25);
  take_copies(rt);
  release(rt, 4, 10.5);
  observe(rt, CS_OBSERVE_STEP_END, 10.75, "s1", "dev", "reviewer", NULL);
  act(rt, 11.0);
  predict(rt, "s1", 3);
  predict(rt, "never-seen", 0);
  observe(rt, CS_OBSERVE_SESSION_END, 12.0, "s1", NULL, NULL, NULL);
  observe(rt, CS_OBSERVE_SESSION_END, 12.5, "s1", NULL, NULL, NULL);
  take_copies(rt);

  /* Refusals by the sidecar: the message names the verb and the field. */
  refusal(rt, "release of an unknown request", cs_runtime_release(rt, 99, CS_TIME_NOW));
  n = prompt_hashes(100, 8, hashes);
  CHECK(cs_runtime_admit(rt, 5, hashes, n, 8, NULL, NULL, NULL, CS_TIME_NOW, ids, NULL, MAX_BLOCKS,
                         NULL) == 1,
        "untagged admit: %s", cs_runtime_last_error(rt));
  refusal(
      rt, "admit of a live request id",
      cs_runtime_admit(rt, 5, hashes, n, 8, NULL, NULL, NULL, CS_TIME_NOW, NULL, NULL, 0, NULL));
  refusal(
      rt, "admit with more hashes than blocks",
      cs_runtime_admit(rt, 6, hashes, n, 4, NULL, NULL, NULL, CS_TIME_NOW, NULL, NULL, 0, NULL));
  refusal(rt, "observe with an empty session",
          cs_runtime_observe(rt, CS_OBSERVE_SESSION_START, 13.0, "", "dev", NULL, NULL));
  refusal(rt, "decode of an unknown request",
          cs_runtime_decode(rt, 77, 1, NULL, 0, CS_TIME_NOW, NULL, 0, NULL));
  /* Refused here, before anything is sent. */
  refusal(rt, "admit with a short block table",
          cs_runtime_admit(rt, 7, hashes, n, 8, NULL, NULL, NULL, CS_TIME_NOW, ids, NULL, 1, NULL));
  refusal(rt, "observe without an agent",
          cs_runtime_observe(rt, CS_OBSERVE_STEP_START, 13.0, "s1", "dev", NULL, NULL));
  refusal(rt, "predict with a bad horizon", cs_runtime_predict(rt, "s1", 300, &p));
  refusal(rt, "admit with a request id past 2^52",
          cs_runtime_admit(rt, (int64_t)1 << 53, hashes, n, 8, NULL, NULL, NULL, CS_TIME_NOW, NULL,
                           NULL, 0, NULL));
  connect_refusal(host, port, "wrong-token-0123456789", "connect with a wrong token");
  connect_refusal(host, port, NULL, "connect without a token");
  /* The handle still works after every refusal. */
  CHECK(cs_runtime_release(rt, 5, CS_TIME_NOW) == CS_OK, "release after refusals: %s",
        cs_runtime_last_error(rt));
  CHECK(cs_runtime_last_error(rt)[0] == '\0', "last_error is not cleared by a success");
  cs_runtime_close(rt);

  {
    /* Nothing listens on port 1: connect fails with a message, no handle. */
    char err[512];
    cs_runtime* none = (cs_runtime*)1;
    const int32_t status = cs_runtime_connect(host, 1, NULL, 2000, &none, err, sizeof err);
    CHECK(status == CS_ERR_IO && none == NULL && strstr(err, "connect") != NULL,
          "connect to a closed port: %d %s", (int)status, err);
  }
  if (failures == 0) printf("{\"done\":true}\n");
  return failures == 0 ? 0 : 1;
}

/* Every verb against a peer that answers garbage: each must fail cleanly. */
static int garbage(const char* host, const char* port, int rounds) {
  cs_runtime* rt = NULL;
  uint64_t hashes[MAX_BLOCKS];
  int32_t ids[MAX_BLOCKS];
  int32_t n;
  int round;
  int calls = 0;
  const cs_prediction* p = NULL;
  cs_act_result r;
  cs_runtime_admission a;
  if (!connect_to(host, port, NULL, &rt)) return 1;
  n = prompt_hashes(7, 16, hashes);
  for (round = 0; round < rounds; round++) {
    int32_t status[7];
    int k;
    status[0] = cs_runtime_observe(rt, CS_OBSERVE_STEP_START, 1.0, "s", "w", "a", NULL);
    status[1] =
        cs_runtime_admit(rt, round, hashes, n, 16, "s", "w", "a", 2.0, ids, ids, MAX_BLOCKS, &a);
    status[2] = cs_runtime_prefill_done(rt, round, 3.0, ids, MAX_BLOCKS, &n);
    n = 4;
    status[3] = cs_runtime_decode(rt, round, 4, hashes, 1, 4.0, ids, MAX_BLOCKS, NULL);
    status[4] = cs_runtime_release(rt, round, 5.0);
    status[5] = cs_runtime_act(rt, 6.0, &r);
    status[6] = cs_runtime_predict(rt, "s", 2, &p);
    for (k = 0; k < 7; k++) {
      calls++;
      CHECK(status[k] < 0, "round %d call %d: garbage accepted (%d)", round, k, (int)status[k]);
      printf("{\"round\":%d,\"call\":%d,\"status\":", round, k);
      print_string(cs_status_string(status[k]));
      printf("}\n");
    }
    /* The last message: a sample of what the caller is told. */
    printf("{\"round\":%d,\"message\":", round);
    print_string(cs_runtime_last_error(rt));
    printf("}\n");
  }
  cs_runtime_close(rt);
  if (failures == 0) printf("{\"done\":true,\"calls\":%d}\n", calls);
  return failures == 0 ? 0 : 1;
}

/*
 * Against a peer that closes each connection silently after its reply (an
 * idle timeout) and answers act a byte at a time, never completing: each
 * release must succeed on a fresh connection, sent once; act must time out
 * within its deadline, sent once.
 */
static int keepalive(const char* host, const char* port) {
  cs_runtime* rt = NULL;
  char err[512];
  int32_t status;
  int i;
  status = cs_runtime_connect(host, atoi(port), "t0ken-for-the-test", 500, &rt, err, sizeof err);
  if (status != CS_OK) {
    fprintf(stderr, "FAIL: connect: %s\n", err);
    return 1;
  }
  for (i = 1; i <= 3; i++) {
    status = cs_runtime_release(rt, i, (double)i);
    CHECK(status == CS_OK, "release %d after an idle close: %s", i, cs_runtime_last_error(rt));
  }
  status = cs_runtime_act(rt, 4.0, NULL);
  CHECK(status == CS_ERR_IO && cs_runtime_http_status(rt) == 0, "act without a reply: %d",
        (int)status);
  printf("{\"act\":");
  print_string(cs_status_string(status));
  printf(",\"message\":");
  print_string(cs_runtime_last_error(rt));
  printf("}\n");
  /* The handle reconnects after a timeout. */
  status = cs_runtime_release(rt, 5, 5.0);
  CHECK(status == CS_OK, "release after a timeout: %s", cs_runtime_last_error(rt));
  cs_runtime_close(rt);
  if (failures == 0) printf("{\"done\":true}\n");
  return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "scenario") == 0) {
    return scenario(argv[2], argv[3], argc == 5 ? argv[4] : NULL);
  }
  if (argc == 5 && strcmp(argv[1], "garbage") == 0) return garbage(argv[2], argv[3], atoi(argv[4]));
  if (argc == 4 && strcmp(argv[1], "keepalive") == 0) return keepalive(argv[2], argv[3]);
  fprintf(stderr,
          "usage: %s scenario HOST PORT [TOKEN] | garbage HOST PORT ROUNDS | keepalive HOST PORT\n",
          argv[0]);
  return 2;
}
