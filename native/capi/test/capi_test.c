/*
 * Longer than 400 lines: one C program covers the whole ABI, so the header
 * is proven usable from plain C in one build.
 *
 * End-to-end test of the C ABI, compiled as C99. Every expectation below is
 * derived from the model documented in native/core/block_manager.h: LIFO free
 * ids and slots (0 first), eviction order (score, lastAccess, id), device
 * evictions demoting to host before dropping, copy plans and their stages.
 *
 * Prints "capi_test: N checks passed" and exits 0; on the first failure it
 * prints where and why and exits 1.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachesage.h"

int capi_c89_abi_version(const cs_config* config);

#define BS 4
#define BYTES 64
#define MAXN 64

static long g_checks = 0;

static void fail_at(int line, const char* what, const char* detail) {
  fprintf(stderr, "capi_test: FAILED at capi_test.c:%d: %s%s%s\n", line, what,
          detail[0] != '\0' ? " -- " : "", detail);
  exit(1);
}

static void check_(int ok, int line, const char* what) {
  ++g_checks;
  if (!ok) fail_at(line, what, "");
}

static void check_eq_(long long got, long long want, int line, const char* what) {
  char buf[128];
  ++g_checks;
  if (got != want) {
    snprintf(buf, sizeof buf, "got %lld, expected %lld", got, want);
    fail_at(line, what, buf);
  }
}

static void check_ids_(const int32_t* got, const int32_t* want, int n, int line, const char* what) {
  char buf[128];
  int i;
  ++g_checks;
  for (i = 0; i < n; ++i) {
    if (got[i] != want[i]) {
      snprintf(buf, sizeof buf, "index %d: got %d, expected %d", i, (int)got[i], (int)want[i]);
      fail_at(line, what, buf);
    }
  }
}

/* got: the call's status; message: the handle's last error read after it. */
static void status_(int32_t got, int32_t want, const char* substr, const char* message, int line,
                    const char* what) {
  char buf[768];
  ++g_checks;
  if (got != want) {
    snprintf(buf, sizeof buf, "returned %d (%s), expected %d (%s); last error: \"%s\"", (int)got,
             cs_status_string(got), (int)want, cs_status_string(want), message);
    fail_at(line, what, buf);
  }
  if (want >= 0 && message[0] != '\0') {
    snprintf(buf, sizeof buf, "succeeded but left the message \"%s\"", message);
    fail_at(line, what, buf);
  }
  if (want < 0 && message[0] == '\0') fail_at(line, what, "failed without a message");
  if (substr != NULL && strstr(message, substr) == NULL) {
    snprintf(buf, sizeof buf, "message \"%s\" lacks \"%s\"", message, substr);
    fail_at(line, what, buf);
  }
}

#define CHECK(cond) check_((cond) != 0, __LINE__, #cond)
#define CHECK_EQ(a, b) check_eq_((long long)(a), (long long)(b), __LINE__, #a " == " #b)
#define CHECK_IDS(got, n, ...) \
  check_ids_((got), (const int32_t[]){__VA_ARGS__}, (n), __LINE__, #got " == {" #__VA_ARGS__ "}")
/* Expects `expr` (a call on manager bm) to return `want`, optionally with a
 * message containing substr. */
#define BM_RET(bm, expr, want, substr)                                               \
  do {                                                                                \
    int32_t s_ = (expr);                                                              \
    status_(s_, (want), (substr), cs_bm_last_error(bm), __LINE__, #expr);             \
  } while (0)
#define BM_OK(bm, expr) BM_RET(bm, expr, CS_OK, NULL)
#define DP_RET(dp, expr, want, substr)                                                \
  do {                                                                                \
    int32_t s_ = (expr);                                                              \
    status_(s_, (want), (substr), cs_dp_last_error(dp), __LINE__, #expr);             \
  } while (0)
#define DP_OK(dp, expr) DP_RET(dp, expr, CS_OK, NULL)
#define INV(bm)                                                                       \
  do {                                                                                \
    char m_[256];                                                                     \
    int32_t s_ = cs_bm_check_invariants((bm), m_, sizeof m_);                         \
    ++g_checks;                                                                       \
    if (s_ != CS_OK) fail_at(__LINE__, "invariants", m_);                             \
  } while (0)

static cs_config make_config(int32_t block_size, int64_t bytes, int32_t device, int32_t host) {
  cs_config c;
  c.block_size = block_size;
  c.bytes_per_block = bytes;
  c.device_blocks = device;
  c.host_blocks = host;
  c.max_classes = 8;
  return c;
}

static void make_tokens(uint32_t* out, int n, uint32_t first) {
  int i;
  for (i = 0; i < n; ++i) out[i] = first + (uint32_t)i;
}

static int32_t hash_tokens(const uint32_t* tokens, int64_t n, uint64_t* out) {
  char err[256];
  int32_t written = -1;
  int32_t s = cs_hash_token_blocks(tokens, n, BS, 0, out, MAXN, &written, err, sizeof err);
  if (s != CS_OK) fail_at(__LINE__, "hash_token_blocks", err);
  return written;
}

/* The bytes a committed block must hold: a function of its hash. */
static uint8_t pattern_byte(uint64_t hash, int i) {
  uint64_t x = hash ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return (uint8_t)x;
}

static void fill_device_block(cs_data_plane* dp, int32_t slot, uint64_t hash) {
  uint8_t buf[BYTES];
  int i;
  for (i = 0; i < BYTES; ++i) buf[i] = pattern_byte(hash, i);
  DP_OK(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, slot, 0, buf, BYTES));
}

/* Every committed block, wherever it lives now, still holds its bytes. */
static void verify_bytes(const cs_block_manager* bm, const cs_data_plane* dp, int line) {
  cs_metadata md;
  uint8_t buf[BYTES];
  char detail[160];
  int32_t id;
  int i;
  if (cs_bm_metadata(bm, &md) != CS_OK) fail_at(line, "metadata", cs_bm_last_error(bm));
  for (id = 0; id < md.num_blocks; ++id) {
    if (md.tier[id] == CS_TIER_FREE || !md.committed[id]) continue;
    if (cs_dp_read_block(dp, md.tier[id], md.slot[id], 0, buf, BYTES) != CS_OK) {
      fail_at(line, "read_block", cs_dp_last_error(dp));
    }
    for (i = 0; i < BYTES; ++i) {
      ++g_checks;
      if (buf[i] != pattern_byte(md.hash[id], i)) {
        snprintf(detail, sizeof detail, "block %d (tier %d slot %d) byte %d is %d, expected %d",
                 (int)id, (int)md.tier[id], (int)md.slot[id], i, buf[i],
                 pattern_byte(md.hash[id], i));
        fail_at(line, "verify_bytes", detail);
      }
    }
  }
}

typedef struct plan_buf {
  uint8_t src_tier[MAXN], dst_tier[MAXN];
  int32_t src_slot[MAXN], dst_slot[MAXN], stages[MAXN];
  cs_copy_plan plan;
} plan_buf;

static void plan_init(plan_buf* p, int32_t capacity, int32_t stage_capacity) {
  p->plan.src_tier = p->src_tier;
  p->plan.src_slot = p->src_slot;
  p->plan.dst_tier = p->dst_tier;
  p->plan.dst_slot = p->dst_slot;
  p->plan.capacity = capacity;
  p->plan.stage_starts = p->stages;
  p->plan.stage_capacity = stage_capacity;
  p->plan.count = -1;
  p->plan.num_stages = -1;
}

/* Takes the pending plan, checks its size, and runs it on the data plane. */
static void run_plan(cs_block_manager* bm, cs_data_plane* dp, plan_buf* p, int32_t copies,
                     int line) {
  char detail[64];
  plan_init(p, MAXN, MAXN);
  if (cs_bm_take_copy_plan(bm, &p->plan) != CS_OK) {
    fail_at(line, "take_copy_plan", cs_bm_last_error(bm));
  }
  ++g_checks;
  if (p->plan.count != copies) {
    snprintf(detail, sizeof detail, "%d copies, expected %d", (int)p->plan.count, (int)copies);
    fail_at(line, "run_plan", detail);
  }
  if (dp != NULL && cs_dp_execute_plan(dp, &p->plan) != CS_OK) {
    fail_at(line, "execute_plan", cs_dp_last_error(dp));
  }
}

typedef struct event_buf {
  uint8_t kind[MAXN], tier[MAXN];
  int32_t block[MAXN];
  uint64_t hash[MAXN];
  cs_events events;
} event_buf;

static void events_init(event_buf* e, int32_t capacity) {
  e->events.kind = e->kind;
  e->events.block = e->block;
  e->events.hash = e->hash;
  e->events.tier = e->tier;
  e->events.capacity = capacity;
  e->events.count = -1;
}

static int32_t take_events(cs_block_manager* bm, event_buf* e, int line) {
  events_init(e, MAXN);
  if (cs_bm_take_events(bm, &e->events) != CS_OK) {
    fail_at(line, "take_events", cs_bm_last_error(bm));
  }
  return e->events.count;
}

static void check_event_(const event_buf* e, int i, int kind, int32_t block, int tier, int line) {
  char detail[128];
  ++g_checks;
  if (i >= e->events.count || e->kind[i] != kind || e->block[i] != block || e->tier[i] != tier) {
    snprintf(detail, sizeof detail, "event %d: got kind %d block %d tier %d, expected %d %d %d", i,
             i < e->events.count ? e->kind[i] : -1, i < e->events.count ? (int)e->block[i] : -1,
             i < e->events.count ? e->tier[i] : -1, kind, (int)block, tier);
    fail_at(line, "event", detail);
  }
}
#define CHECK_EVENT(e, i, kind, block, tier) \
  check_event_((e), (i), (kind), (block), (tier), __LINE__)

/* ------------------------------------------------------------ creation */

static void test_create_and_misc(void) {
  char err[256];
  char tiny[8];
  cs_config c;
  cs_block_manager* bm;
  cs_data_plane* dp;

  CHECK_EQ(cs_abi_version(), CS_ABI_VERSION);
  c = make_config(BS, 0, 4, 0);
  CHECK_EQ(capi_c89_abi_version(&c), CS_ABI_VERSION);
  CHECK(strcmp(cs_status_string(CS_OK), "CS_OK") == 0);
  CHECK(strcmp(cs_status_string(CS_ERR_BUFFER_TOO_SMALL), "CS_ERR_BUFFER_TOO_SMALL") == 0);
  CHECK(strcmp(cs_status_string(-99), "unknown status") == 0);

  CHECK(cs_bm_create(NULL, err, sizeof err) == NULL);
  CHECK(strstr(err, "config is NULL") != NULL);
  c = make_config(0, 0, 4, 0);
  CHECK(cs_bm_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "blockSize must be in [1, 1048576], got 0") != NULL);
  c = make_config(BS, 0, 0, 0);
  CHECK(cs_bm_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "deviceBlocks must be >= 1, got 0") != NULL);
  c = make_config(BS, 0, 4, -1);
  CHECK(cs_bm_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "hostBlocks must be >= 0, got -1") != NULL);
  c = make_config(BS, -5, 4, 0);
  CHECK(cs_bm_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "bytesPerBlock must be >= 0, got -5") != NULL);
  c = make_config(BS, 0, 1 << 28, 1);
  CHECK(cs_bm_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "deviceBlocks + hostBlocks must be <=") != NULL);
  /* No err buffer, or a tiny one: still NULL, never an overflow. */
  c = make_config(0, 0, 4, 0);
  CHECK(cs_bm_create(&c, NULL, 0) == NULL);
  memset(tiny, 'x', sizeof tiny);
  CHECK(cs_bm_create(&c, tiny, sizeof tiny) == NULL);
  CHECK_EQ(strlen(tiny), sizeof tiny - 1);

  /* A good config clears the err buffer. */
  c = make_config(BS, 0, 4, 0);
  strcpy(err, "stale");
  bm = cs_bm_create(&c, err, sizeof err);
  CHECK(bm != NULL);
  CHECK_EQ(err[0], '\0');
  CHECK_EQ(cs_bm_last_error(bm)[0], '\0');
  INV(bm);
  cs_bm_destroy(bm);
  cs_bm_destroy(NULL);

  CHECK(cs_dp_create(NULL, err, sizeof err) == NULL);
  CHECK(strstr(err, "config is NULL") != NULL);
  c = make_config(BS, -1, 4, 4);
  CHECK(cs_dp_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "bytes_per_block must be >= 0, got -1") != NULL);
  c = make_config(BS, 16, -2, 4);
  CHECK(cs_dp_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "device_blocks must be >= 0, got -2") != NULL);
  c = make_config(BS, INT64_MAX / 2, 4, 0);
  CHECK(cs_dp_create(&c, err, sizeof err) == NULL);
  CHECK(strstr(err, "overflows") != NULL);
  c = make_config(BS, 16, 2, 0);
  dp = cs_dp_create(&c, err, sizeof err);
  CHECK(dp != NULL);
  CHECK_EQ(cs_dp_blocks(dp, CS_TIER_HOST), 0);
  cs_dp_destroy(dp);
  cs_dp_destroy(NULL);

  /* NULL handles fail cleanly everywhere. */
  CHECK_EQ(cs_bm_used_blocks(NULL, CS_TIER_DEVICE), CS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(cs_bm_release(NULL, 1), CS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(cs_bm_check_invariants(NULL, err, sizeof err), CS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err, "NULL") != NULL);
  CHECK(strstr(cs_bm_last_error(NULL), "NULL") != NULL);
  CHECK_EQ(cs_dp_blocks(NULL, CS_TIER_DEVICE), CS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(cs_dp_execute_plan(NULL, NULL), CS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(cs_dp_last_error(NULL), "NULL") != NULL);
}

static void test_hashing(void) {
  uint32_t t1[12], t2[10];
  uint64_t h1[4], h2[4], tail[4];
  char err[256];
  int32_t written = -1;

  make_tokens(t1, 12, 1);
  make_tokens(t2, 10, 1);
  t2[8] = 100;
  t2[9] = 101;
  CHECK_EQ(hash_tokens(t1, 12, h1), 3);
  CHECK_EQ(hash_tokens(t2, 10, h2), 2);
  CHECK(h1[0] == h2[0] && h1[1] == h2[1]);
  CHECK(h1[0] != h1[1] && h1[1] != h1[2] && h1[0] != h1[2]);
  /* Chaining: hashing the tail from its parent's hash continues the chain. */
  CHECK_EQ(cs_hash_token_blocks(t1 + 4, 8, BS, h1[0], tail, 4, &written, err, sizeof err), CS_OK);
  CHECK_EQ(written, 2);
  CHECK(tail[0] == h1[1] && tail[1] == h1[2]);
  /* Too small an output reports the size and writes nothing past it. */
  tail[2] = 42;
  CHECK_EQ(cs_hash_token_blocks(t1, 12, BS, 0, tail, 2, &written, err, sizeof err),
           CS_ERR_BUFFER_TOO_SMALL);
  CHECK_EQ(written, 3);
  CHECK(tail[2] == 42);
  CHECK(strstr(err, "3 hashes but out holds 2") != NULL);
  CHECK_EQ(cs_hash_token_blocks(t1, 12, 0, 0, tail, 4, &written, err, sizeof err),
           CS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err, "block_size must be >= 1") != NULL);
  CHECK_EQ(cs_hash_token_blocks(NULL, 4, BS, 0, tail, 4, &written, err, sizeof err),
           CS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err, "tokens is NULL") != NULL);
  CHECK_EQ(cs_hash_token_blocks(t1, -1, BS, 0, tail, 4, &written, err, sizeof err),
           CS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(cs_hash_token_blocks(t1, 12, BS, 0, NULL, 4, &written, err, sizeof err),
           CS_ERR_INVALID_ARGUMENT);
  CHECK_EQ(cs_hash_token_blocks(t1, 12, BS, 0, tail, 4, NULL, err, sizeof err),
           CS_ERR_INVALID_ARGUMENT);
  /* Fewer tokens than a block: no hashes, no output needed. */
  CHECK_EQ(cs_hash_token_blocks(t1, 3, BS, 0, NULL, 0, &written, NULL, 0), CS_OK);
  CHECK_EQ(written, 0);
}

/* ------------------------------------------- requests and prefix sharing */

static void test_requests(void) {
  cs_config c = make_config(BS, 32, 6, 4);
  cs_block_manager* bm;
  cs_metadata md, md2;
  cs_lookup_result lr;
  cs_admit_result ar;
  cs_request_tags tags;
  cs_config back;
  event_buf ev;
  plan_buf pb;
  uint32_t t1[12], t2[12];
  uint64_t h1[4], h2[4];
  int32_t ids[MAXN], table[MAXN], n = -1;
  double clock_before, clock_after;
  char err[256];
  int i;

  make_tokens(t1, 12, 1);
  make_tokens(t2, 12, 1);
  t2[8] = 100;
  t2[9] = 101;
  t2[10] = 102;
  t2[11] = 103;
  hash_tokens(t1, 12, h1);
  hash_tokens(t2, 12, h2);

  bm = cs_bm_create(&c, err, sizeof err);
  if (bm == NULL) fail_at(__LINE__, "create", err);
  BM_OK(bm, cs_bm_config(bm, &back));
  CHECK(back.block_size == BS && back.bytes_per_block == 32 && back.device_blocks == 6 &&
        back.host_blocks == 4);
  BM_RET(bm, cs_bm_num_block_ids(bm), 10, NULL);
  BM_OK(bm, cs_bm_metadata(bm, &md));
  CHECK_EQ(md.num_blocks, 10);
  for (i = 0; i < 10; ++i) CHECK_EQ(md.tier[i], CS_TIER_FREE);
  INV(bm);

  BM_OK(bm, cs_bm_lookup(bm, h1, 3, ids, MAXN, &lr));
  CHECK(lr.device_blocks == 0 && lr.host_blocks == 0 && lr.num_ids == 0);

  /* Two requests with the same prompt before either commits: separate blocks. */
  BM_RET(bm, cs_bm_admit(bm, 1, h1, 3, 12, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK(ar.cached_device_tokens == 0 && ar.loaded_blocks == 0 && ar.num_blocks == 3);
  CHECK_IDS(ids, 3, 0, 1, 2);
  CHECK_IDS(table, 3, 0, 1, 2);
  CHECK(md.tier[0] == CS_TIER_DEVICE && md.ref_count[0] == 1 && !md.committed[0]);
  INV(bm);
  tags.workload = 7;
  tags.agent = 2;
  tags.session = 9;
  BM_RET(bm, cs_bm_admit(bm, 3, h1, 3, 12, &tags, ids, table, MAXN, &ar), 1, NULL);
  CHECK_IDS(ids, 3, 3, 4, 5);
  CHECK_IDS(table, 3, 3, 4, 5);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 6, NULL);
  BM_RET(bm, cs_bm_pinned_device_blocks(bm), 6, NULL);
  BM_RET(bm, cs_bm_num_requests(bm), 2, NULL);
  INV(bm);

  /* The device tier is full and everything is pinned: admit says "not now". */
  BM_OK(bm, cs_bm_clock(bm, &clock_before));
  BM_RET(bm, cs_bm_admit(bm, 4, NULL, 0, 4, NULL, ids, table, MAXN, &ar), 0, NULL);
  BM_OK(bm, cs_bm_clock(bm, &clock_after));
  CHECK(clock_before == clock_after);
  BM_RET(bm, cs_bm_has_request(bm, 4), 0, NULL);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 6, NULL);
  INV(bm);

  /* Commit: request 3's duplicate blocks are replaced by request 1's. */
  BM_OK(bm, cs_bm_commit(bm, 1, 3, ids, table, MAXN, &n));
  CHECK_EQ(n, 3);
  CHECK_IDS(ids, 3, 0, 1, 2);
  CHECK(md.committed[0] && md.committed[1] && md.committed[2]);
  CHECK(md.parent[0] == CS_NO_BLOCK && md.parent[1] == 0 && md.parent[2] == 1);
  CHECK(md.depth[0] == 0 && md.depth[1] == 1 && md.depth[2] == 2);
  CHECK(md.hash[0] == h1[0] && md.hash[1] == h1[1] && md.hash[2] == h1[2]);
  INV(bm);
  BM_OK(bm, cs_bm_commit(bm, 3, 3, ids, table, MAXN, &n));
  CHECK_EQ(n, 3);
  CHECK_IDS(ids, 3, 0, 1, 2);
  CHECK_IDS(table, 3, 0, 1, 2);
  CHECK(md.tier[3] == CS_TIER_FREE && md.tier[4] == CS_TIER_FREE && md.tier[5] == CS_TIER_FREE);
  CHECK_EQ(md.ref_count[0], 2);
  CHECK(md.agent_mask[0] == ((uint64_t)1 << 2));
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 3, NULL);
  BM_RET(bm, cs_bm_pinned_device_blocks(bm), 3, NULL);
  INV(bm);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 3);
  for (i = 0; i < 3; ++i) {
    CHECK_EVENT(&ev, i, CS_EVENT_STORED, i, CS_TIER_DEVICE);
    CHECK(ev.hash[i] == h1[i]);
  }
  run_plan(bm, NULL, &pb, 0, __LINE__);

  /* A prompt sharing two blocks: lookup, then admit reuses them. */
  BM_OK(bm, cs_bm_lookup(bm, h2, 2, ids, MAXN, &lr));
  CHECK(lr.device_blocks == 2 && lr.host_blocks == 0 && lr.num_ids == 2);
  CHECK_IDS(ids, 2, 0, 1);
  BM_RET(bm, cs_bm_lookup(bm, h2, 2, ids, 1, &lr), CS_ERR_BUFFER_TOO_SMALL, "2 matched ids");
  CHECK_EQ(lr.num_ids, 2);
  BM_OK(bm, cs_bm_lookup(bm, h2, 3, NULL, 0, &lr));
  CHECK(lr.device_blocks == 2 && lr.num_ids == 2);
  BM_RET(bm, cs_bm_admit(bm, 2, h2, 2, 10, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK(ar.cached_device_tokens == 8 && ar.loaded_blocks == 0 && ar.num_blocks == 3);
  /* Freed ids and slots are LIFO stacks: 5 was freed last. */
  CHECK_IDS(ids, 3, 0, 1, 5);
  CHECK_IDS(table, 3, 0, 1, 5);
  CHECK_EQ(md.ref_count[0], 3);
  INV(bm);

  /* Append: two tokens fill block 2 (with its hash), one more opens block 3. */
  BM_RET(bm, cs_bm_append(bm, 2, 2, h2 + 2, 1, ids, MAXN, &n), 1, NULL);
  CHECK_EQ(n, 0);
  INV(bm);
  BM_RET(bm, cs_bm_append(bm, 2, 5, NULL, 0, ids, 1, &n), CS_ERR_BUFFER_TOO_SMALL,
         "can add 2 blocks but new_block_ids holds 1");
  BM_RET(bm, cs_bm_append(bm, 2, 1, NULL, 0, ids, 1, &n), 1, NULL);
  CHECK_EQ(n, 1);
  CHECK_EQ(ids[0], 4);
  BM_OK(bm, cs_bm_request_blocks(bm, 2, ids, table, MAXN, &n));
  CHECK_EQ(n, 4);
  CHECK_IDS(ids, 4, 0, 1, 5, 4);
  CHECK_IDS(table, 4, 0, 1, 5, 4);
  BM_RET(bm, cs_bm_request_blocks(bm, 2, ids, NULL, 3, &n), CS_ERR_BUFFER_TOO_SMALL,
         "has 4 blocks");
  CHECK_EQ(n, 4);
  INV(bm);

  /* Commit errors change nothing. */
  BM_RET(bm, cs_bm_commit(bm, 2, 3, ids, table, 2, &n), CS_ERR_BUFFER_TOO_SMALL,
         "has 4 blocks but the buffers hold 2");
  CHECK_EQ(n, 4);
  CHECK(!md.committed[5]);
  BM_RET(bm, cs_bm_commit(bm, 2, 4, ids, table, MAXN, &n), CS_ERR_INVALID_ARGUMENT,
         "commit: 4 blocks but only 3 have known hashes in request 2");
  BM_RET(bm, cs_bm_commit(bm, 2, -1, NULL, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "numBlocks must be >= 0");
  INV(bm);
  BM_OK(bm, cs_bm_commit(bm, 2, 3, NULL, NULL, 0, NULL));
  CHECK(md.committed[5] && md.parent[5] == 1 && md.hash[5] == h2[2]);
  CHECK_EQ(md.cached_children[1], 2);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK_EVENT(&ev, 0, CS_EVENT_STORED, 5, CS_TIER_DEVICE);
  CHECK(ev.hash[0] == h2[2]);
  INV(bm);

  BM_OK(bm, cs_bm_release(bm, 1));
  INV(bm);
  BM_OK(bm, cs_bm_release(bm, 3));
  INV(bm);
  /* Block 2 is unpinned now; 0 and 1 are still held by request 2. */
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_DEVICE), 1, NULL);
  BM_OK(bm, cs_bm_release(bm, 2));
  INV(bm);
  /* Uncommitted block 4 is freed; the committed tree stays cached. */
  CHECK_EQ(md.tier[4], CS_TIER_FREE);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 4, NULL);
  BM_RET(bm, cs_bm_pinned_device_blocks(bm), 0, NULL);
  BM_RET(bm, cs_bm_num_requests(bm), 0, NULL);
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_DEVICE), 2, NULL); /* leaves 2 and 5 */
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_HOST), 0, NULL);
  BM_RET(bm, cs_bm_release(bm, 2), CS_ERR_INVALID_ARGUMENT, "release: unknown request 2");
  CHECK_EQ(take_events(bm, &ev, __LINE__), 0);

  /* Scores override recency: LRU would pick 2 (released first), 5 scores lower. */
  CHECK(md.last_access[2] < md.last_access[5]);
  ids[0] = 2;
  ids[1] = 5;
  {
    const float scores[2] = {5.0f, 1.0f};
    BM_OK(bm, cs_bm_set_scores(bm, ids, scores, 2));
  }
  CHECK(md.score[2] == 5.0f && md.score[5] == 1.0f);
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 1), 1, NULL);
  /* With host room, a device eviction demotes. */
  CHECK(md.tier[5] == CS_TIER_HOST && md.slot[5] == 0);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK_EVENT(&ev, 0, CS_EVENT_DEMOTED, 5, CS_TIER_HOST);
  run_plan(bm, NULL, &pb, 1, __LINE__);
  CHECK(pb.src_tier[0] == CS_TIER_DEVICE && pb.src_slot[0] == 5 && pb.dst_tier[0] == CS_TIER_HOST &&
        pb.dst_slot[0] == 0);
  CHECK(pb.plan.num_stages == 1 && pb.stages[0] == 0);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_HOST), 1, NULL);
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_HOST), 1, NULL);
  INV(bm);
  /* Evicting from host drops. */
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_HOST, 3), 1, NULL);
  CHECK_EQ(md.tier[5], CS_TIER_FREE);
  CHECK_EQ(md.cached_children[1], 1);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 5, CS_TIER_FREE);
  run_plan(bm, NULL, &pb, 0, __LINE__);
  BM_OK(bm, cs_bm_lookup(bm, h2, 3, ids, MAXN, &lr));
  CHECK(lr.device_blocks == 2 && lr.num_ids == 2);
  INV(bm);

  /* The metadata pointers are the same arrays for the manager's lifetime. */
  BM_OK(bm, cs_bm_metadata(bm, &md2));
  CHECK(md2.tier == md.tier && md2.slot == md.slot && md2.score == md.score &&
        md2.hash == md.hash && md2.parent == md.parent);
  cs_bm_destroy(bm);
}

/* ------------------------------------------------------ score classes */

static void test_score_classes(void) {
  cs_config c = make_config(BS, 0, 8, 0);
  cs_block_manager* bm;
  cs_metadata md;
  cs_admit_result ar;
  event_buf ev;
  uint32_t tokens[4];
  uint64_t h[4][1];
  int32_t ids[MAXN], table[MAXN];
  char err[256];
  int32_t r;

  bm = cs_bm_create(&c, err, sizeof err);
  if (bm == NULL) fail_at(__LINE__, "create", err);
  BM_OK(bm, cs_bm_metadata(bm, &md));
  CHECK_EQ(md.num_classes, 8);
  for (r = 0; r < 4; ++r) {
    make_tokens(tokens, 4, 7000 * (uint32_t)(r + 1));
    hash_tokens(tokens, 4, h[r]);
    BM_RET(bm, cs_bm_admit(bm, r, h[r], 1, 4, NULL, ids, table, MAXN, &ar), 1, NULL);
    BM_OK(bm, cs_bm_commit(bm, r, 1, NULL, NULL, 0, NULL));
    BM_OK(bm, cs_bm_release(bm, r));
  }
  take_events(bm, &ev, __LINE__);
  {
    /* Blocks 0 and 2 in class 3, 1 in class 5, 3 classless (score 0). */
    const int32_t sid[3] = {0, 2, 1};
    const int32_t cls[3] = {3, 3, 5};
    const int32_t cids[2] = {3, 5};
    const float cscores[2] = {2.0f, -1.0f};
    BM_OK(bm, cs_bm_set_score_classes(bm, sid, cls, 3));
    BM_OK(bm, cs_bm_set_class_scores(bm, cids, cscores, 2));
  }
  CHECK(md.score_class[0] == 3 && md.score_class[1] == 5 && md.score_class[3] == -1);
  CHECK(md.class_score[3] == 2.0f && md.class_score[5] == -1.0f);
  /* Order: 1 (class 5, -1), 3 (own 0), then class 3 by recency: 0, 2. */
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 4), 4, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 4);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 1, CS_TIER_FREE);
  CHECK_EVENT(&ev, 1, CS_EVENT_REMOVED, 3, CS_TIER_FREE);
  CHECK_EVENT(&ev, 2, CS_EVENT_REMOVED, 0, CS_TIER_FREE);
  CHECK_EVENT(&ev, 3, CS_EVENT_REMOVED, 2, CS_TIER_FREE);
  CHECK(md.score_class[0] == -1);
  {
    const int32_t one = 0;
    const int32_t bad_class = 8;
    const float nan_score = NAN;
    BM_RET(bm, cs_bm_set_score_classes(bm, &one, &bad_class, 1), CS_ERR_INVALID_ARGUMENT,
           "class 8 at index 0 is out of range [-1, 8)");
    BM_RET(bm, cs_bm_set_class_scores(bm, &bad_class, &md.class_score[0], 1),
           CS_ERR_INVALID_ARGUMENT, "out of range [0, 8)");
    BM_RET(bm, cs_bm_set_class_scores(bm, &one, &nan_score, 1), CS_ERR_INVALID_ARGUMENT,
           "not finite");
  }
  INV(bm);
  cs_bm_destroy(bm);
}

/* ----------------------------------------------------- eviction order */

static void test_eviction_order(void) {
  cs_config c = make_config(BS, 0, 8, 0);
  cs_block_manager* bm;
  cs_metadata md;
  cs_admit_result ar;
  event_buf ev;
  uint32_t tokens[4];
  uint64_t h[6][1];
  int32_t ids[MAXN], table[MAXN];
  char err[256];
  int32_t r;

  bm = cs_bm_create(&c, err, sizeof err);
  if (bm == NULL) fail_at(__LINE__, "create", err);
  BM_OK(bm, cs_bm_metadata(bm, &md));
  /* Six one-block prompts, each its own chain: ids 0..5, all evictable. */
  for (r = 0; r < 6; ++r) {
    make_tokens(tokens, 4, 1000 * (uint32_t)(r + 1));
    hash_tokens(tokens, 4, h[r]);
    BM_RET(bm, cs_bm_admit(bm, r, h[r], 1, 4, NULL, ids, table, MAXN, &ar), 1, NULL);
    CHECK_EQ(ids[0], r);
    BM_OK(bm, cs_bm_commit(bm, r, 1, NULL, NULL, 0, NULL));
    BM_OK(bm, cs_bm_release(bm, r));
    INV(bm);
  }
  CHECK_EQ(take_events(bm, &ev, __LINE__), 6);
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_DEVICE), 6, NULL);

  /* Unscored: least recently used first. No host tier: evictions drop. */
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 1), 1, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 0, CS_TIER_FREE);
  INV(bm);

  /* Scored: lowest score first. */
  {
    const int32_t sid[5] = {1, 2, 3, 4, 5};
    const float sc[5] = {3.0f, 1.0f, 4.0f, 1.5f, 9.0f};
    BM_OK(bm, cs_bm_set_scores(bm, sid, sc, 5));
  }
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 2), 2, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 2);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 2, CS_TIER_FREE);
  CHECK_EVENT(&ev, 1, CS_EVENT_REMOVED, 4, CS_TIER_FREE);
  CHECK(ev.hash[0] == h[2][0] && ev.hash[1] == h[4][0]);
  INV(bm);

  /* set_all_scores: 5 goes first; 1 and 3 tie on score, so recency decides. */
  {
    const float all[8] = {0, 0, 0, 0, 0, -2.0f, 0, 0};
    BM_OK(bm, cs_bm_set_all_scores(bm, all, 8));
  }
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 2), 2, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 2);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 5, CS_TIER_FREE);
  CHECK_EVENT(&ev, 1, CS_EVENT_REMOVED, 1, CS_TIER_FREE);
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 5), 1, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 3, CS_TIER_FREE);
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 5), 0, NULL);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 0, NULL);
  CHECK(md.tier[3] == CS_TIER_FREE && md.score[3] == 0.0f);
  INV(bm);

  /* Score and eviction errors. */
  {
    int32_t bad_id = 99;
    float one = 1.0f;
    float nan_score = NAN;
    const float three[3] = {0, 0, 0};
    BM_RET(bm, cs_bm_set_scores(bm, &bad_id, &one, 1), CS_ERR_INVALID_ARGUMENT,
           "block id 99 at index 0 is out of range [0, 8)");
    bad_id = 1;
    BM_RET(bm, cs_bm_set_scores(bm, &bad_id, &nan_score, 1), CS_ERR_INVALID_ARGUMENT,
           "not finite");
    BM_RET(bm, cs_bm_set_scores(bm, &bad_id, NULL, 1), CS_ERR_INVALID_ARGUMENT,
           "scores is NULL");
    BM_RET(bm, cs_bm_set_scores(bm, &bad_id, &one, -1), CS_ERR_INVALID_ARGUMENT,
           "must be >= 0");
    BM_RET(bm, cs_bm_set_all_scores(bm, three, 3), CS_ERR_INVALID_ARGUMENT,
           "expected 8 scores (one per block id), got 3");
    BM_RET(bm, cs_bm_evict(bm, CS_TIER_FREE, 1), CS_ERR_INVALID_ARGUMENT, "tier must be");
    BM_RET(bm, cs_bm_evict(bm, 7, 1), CS_ERR_INVALID_ARGUMENT, "got 7");
    BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, -1), CS_ERR_INVALID_ARGUMENT,
           "count must be >= 0");
    BM_RET(bm, cs_bm_used_blocks(bm, 300), CS_ERR_INVALID_ARGUMENT, "tier must be");
    BM_RET(bm, cs_bm_evictable_blocks(bm, -1), CS_ERR_INVALID_ARGUMENT, "tier must be");
  }
  INV(bm);
  cs_bm_destroy(bm);
}

/* ------------------------------------------ real bytes through the tiers */

static void test_bytes(void) {
  cs_config c = make_config(BS, BYTES, 4, 4);
  cs_block_manager* bm;
  cs_data_plane* dp;
  cs_metadata md;
  cs_lookup_result lr;
  cs_admit_result ar;
  event_buf ev;
  plan_buf pb;
  uint32_t ta[16], tb[8];
  uint64_t ha[4], hb[2];
  int32_t ids[MAXN], table[MAXN], n;
  int32_t pending_copies = -1, pending_stages = -1;
  int32_t one_id;
  char err[256];
  int i;

  make_tokens(ta, 16, 1000);
  make_tokens(tb, 8, 2000);
  CHECK_EQ(hash_tokens(ta, 16, ha), 4);
  CHECK_EQ(hash_tokens(tb, 8, hb), 2);
  bm = cs_bm_create(&c, err, sizeof err);
  if (bm == NULL) fail_at(__LINE__, "create", err);
  dp = cs_dp_create(&c, err, sizeof err);
  if (dp == NULL) fail_at(__LINE__, "dp create", err);
  BM_OK(bm, cs_bm_metadata(bm, &md));

  /* Request 10: prompt A fills the device tier. */
  BM_RET(bm, cs_bm_admit(bm, 10, ha, 4, 16, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK_IDS(ids, 4, 0, 1, 2, 3);
  CHECK_IDS(table, 4, 0, 1, 2, 3);
  run_plan(bm, dp, &pb, 0, __LINE__);
  for (i = 0; i < 4; ++i) fill_device_block(dp, table[i], ha[i]);
  BM_OK(bm, cs_bm_commit(bm, 10, 4, NULL, NULL, 0, NULL));
  BM_OK(bm, cs_bm_release(bm, 10));
  verify_bytes(bm, dp, __LINE__);
  INV(bm);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 4);

  /* Request 11: prompt B evicts A's tail (leaf first) to host. */
  BM_RET(bm, cs_bm_admit(bm, 11, hb, 2, 8, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK_IDS(ids, 2, 4, 5);
  CHECK_IDS(table, 2, 3, 2);
  CHECK(md.tier[3] == CS_TIER_HOST && md.slot[3] == 0);
  CHECK(md.tier[2] == CS_TIER_HOST && md.slot[2] == 1);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 2);
  CHECK_EVENT(&ev, 0, CS_EVENT_DEMOTED, 3, CS_TIER_HOST);
  CHECK_EVENT(&ev, 1, CS_EVENT_DEMOTED, 2, CS_TIER_HOST);
  /* The demotions must run before B's KV overwrites those slots. */
  run_plan(bm, dp, &pb, 2, __LINE__);
  CHECK(pb.src_tier[0] == CS_TIER_DEVICE && pb.src_slot[0] == 3 && pb.dst_tier[0] == CS_TIER_HOST &&
        pb.dst_slot[0] == 0);
  CHECK(pb.src_tier[1] == CS_TIER_DEVICE && pb.src_slot[1] == 2 && pb.dst_tier[1] == CS_TIER_HOST &&
        pb.dst_slot[1] == 1);
  CHECK(pb.plan.num_stages == 1 && pb.stages[0] == 0);
  verify_bytes(bm, dp, __LINE__);
  for (i = 0; i < 2; ++i) fill_device_block(dp, table[i], hb[i]);
  BM_OK(bm, cs_bm_commit(bm, 11, 2, NULL, NULL, 0, NULL));
  BM_OK(bm, cs_bm_release(bm, 11));
  verify_bytes(bm, dp, __LINE__);
  INV(bm);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 2);
  CHECK_EVENT(&ev, 0, CS_EVENT_STORED, 4, CS_TIER_DEVICE);
  CHECK_EVENT(&ev, 1, CS_EVENT_STORED, 5, CS_TIER_DEVICE);

  /* Prompt A again: half on device, half on host. */
  BM_OK(bm, cs_bm_lookup(bm, ha, 4, ids, MAXN, &lr));
  CHECK(lr.device_blocks == 2 && lr.host_blocks == 2 && lr.num_ids == 4);
  CHECK_IDS(ids, 4, 0, 1, 2, 3);

  /* Request 12 loads A's tail back, demoting B to make room; each load
   * reads or overwrites a slot the previous copy touched, so every copy is
   * its own stage and order matters. */
  BM_RET(bm, cs_bm_admit(bm, 12, ha, 4, 16, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK(ar.cached_device_tokens == 8 && ar.loaded_blocks == 2 && ar.num_blocks == 4);
  CHECK_IDS(ids, 4, 0, 1, 2, 3);
  CHECK_IDS(table, 4, 0, 1, 2, 3);
  CHECK(md.tier[5] == CS_TIER_HOST && md.slot[5] == 2);
  CHECK(md.tier[4] == CS_TIER_HOST && md.slot[4] == 1);
  INV(bm);

  /* Copy plan: too-small buffers keep it whole. */
  BM_OK(bm, cs_bm_pending_copy_plan(bm, &pending_copies, &pending_stages));
  CHECK(pending_copies == 4 && pending_stages == 4);
  plan_init(&pb, 3, MAXN);
  BM_RET(bm, cs_bm_take_copy_plan(bm, &pb.plan), CS_ERR_BUFFER_TOO_SMALL, "4 copies in 4 stages");
  CHECK(pb.plan.count == 4 && pb.plan.num_stages == 4);
  plan_init(&pb, MAXN, 2);
  BM_RET(bm, cs_bm_take_copy_plan(bm, &pb.plan), CS_ERR_BUFFER_TOO_SMALL, "kept for the next call");
  plan_init(&pb, 0, 0);
  pb.plan.src_tier = NULL;
  pb.plan.src_slot = NULL;
  pb.plan.dst_tier = NULL;
  pb.plan.dst_slot = NULL;
  pb.plan.stage_starts = NULL;
  BM_RET(bm, cs_bm_take_copy_plan(bm, &pb.plan), CS_ERR_BUFFER_TOO_SMALL, NULL);
  CHECK(pb.plan.count == 4 && pb.plan.num_stages == 4);
  plan_init(&pb, 4, 0);
  pb.plan.src_slot = NULL;
  BM_RET(bm, cs_bm_take_copy_plan(bm, &pb.plan), CS_ERR_INVALID_ARGUMENT, "src_slot is NULL");
  plan_init(&pb, -1, 0);
  BM_RET(bm, cs_bm_take_copy_plan(bm, &pb.plan), CS_ERR_INVALID_ARGUMENT, "capacity must be >= 0");
  BM_RET(bm, cs_bm_take_copy_plan(bm, NULL), CS_ERR_INVALID_ARGUMENT, "plan is NULL");
  BM_OK(bm, cs_bm_pending_copy_plan(bm, &pending_copies, NULL));
  CHECK_EQ(pending_copies, 4);
  /* Exactly enough room works. */
  plan_init(&pb, 4, 4);
  BM_OK(bm, cs_bm_take_copy_plan(bm, &pb.plan));
  CHECK(pb.plan.count == 4 && pb.plan.num_stages == 4);
  CHECK(pb.src_tier[0] == CS_TIER_DEVICE && pb.src_slot[0] == 2 && pb.dst_tier[0] == CS_TIER_HOST &&
        pb.dst_slot[0] == 2);
  CHECK(pb.src_tier[1] == CS_TIER_HOST && pb.src_slot[1] == 1 && pb.dst_tier[1] == CS_TIER_DEVICE &&
        pb.dst_slot[1] == 2);
  CHECK(pb.src_tier[2] == CS_TIER_DEVICE && pb.src_slot[2] == 3 && pb.dst_tier[2] == CS_TIER_HOST &&
        pb.dst_slot[2] == 1);
  CHECK(pb.src_tier[3] == CS_TIER_HOST && pb.src_slot[3] == 0 && pb.dst_tier[3] == CS_TIER_DEVICE &&
        pb.dst_slot[3] == 3);
  CHECK_IDS(pb.stages, 4, 0, 1, 2, 3);
  BM_OK(bm, cs_bm_pending_copy_plan(bm, &pending_copies, &pending_stages));
  CHECK(pending_copies == 0 && pending_stages == 0);
  DP_OK(dp, cs_dp_execute_plan(dp, &pb.plan));
  verify_bytes(bm, dp, __LINE__);
  INV(bm);

  /* Events: a partial take loses nothing, and later events queue behind. */
  BM_OK(bm, cs_bm_pending_events(bm, &n));
  CHECK_EQ(n, 4);
  events_init(&ev, 2);
  BM_RET(bm, cs_bm_take_events(bm, &ev.events), CS_ERR_BUFFER_TOO_SMALL, "4 events pending");
  CHECK_EQ(ev.events.count, 4);
  events_init(&ev, 0);
  ev.events.kind = NULL;
  ev.events.block = NULL;
  ev.events.hash = NULL;
  ev.events.tier = NULL;
  BM_RET(bm, cs_bm_take_events(bm, &ev.events), CS_ERR_BUFFER_TOO_SMALL, NULL);
  CHECK_EQ(ev.events.count, 4);
  events_init(&ev, 4);
  ev.events.hash = NULL;
  BM_RET(bm, cs_bm_take_events(bm, &ev.events), CS_ERR_INVALID_ARGUMENT, "hash is NULL");
  BM_RET(bm, cs_bm_take_events(bm, NULL), CS_ERR_INVALID_ARGUMENT, "events is NULL");
  BM_OK(bm, cs_bm_release(bm, 12));
  INV(bm);

  /* Explicit demote: the device leaf goes to host slot 0 (freed last). */
  one_id = 3;
  BM_RET(bm, cs_bm_demote(bm, &one_id, 1), 1, NULL);
  CHECK(md.tier[3] == CS_TIER_HOST && md.slot[3] == 0);
  one_id = 0;
  BM_RET(bm, cs_bm_demote(bm, &one_id, 1), 0, NULL); /* has device children */
  one_id = 42;
  BM_RET(bm, cs_bm_demote(bm, &one_id, 1), CS_ERR_INVALID_ARGUMENT,
         "demote: block id 42 is out of range [0, 8)");
  one_id = 6;
  BM_RET(bm, cs_bm_demote(bm, &one_id, 1), CS_ERR_INVALID_ARGUMENT,
         "demote: block id 6 is not allocated");
  BM_RET(bm, cs_bm_demote(bm, NULL, 1), CS_ERR_INVALID_ARGUMENT, "ids is NULL");
  run_plan(bm, dp, &pb, 1, __LINE__);
  verify_bytes(bm, dp, __LINE__);
  INV(bm);

  /* The kept events come first, then the new one. */
  CHECK_EQ(take_events(bm, &ev, __LINE__), 5);
  CHECK_EVENT(&ev, 0, CS_EVENT_DEMOTED, 5, CS_TIER_HOST);
  CHECK_EVENT(&ev, 1, CS_EVENT_LOADED, 2, CS_TIER_DEVICE);
  CHECK_EVENT(&ev, 2, CS_EVENT_DEMOTED, 4, CS_TIER_HOST);
  CHECK_EVENT(&ev, 3, CS_EVENT_LOADED, 3, CS_TIER_DEVICE);
  CHECK_EVENT(&ev, 4, CS_EVENT_DEMOTED, 3, CS_TIER_HOST);
  CHECK(ev.hash[0] == hb[1] && ev.hash[1] == ha[2] && ev.hash[4] == ha[3]);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 0);

  /* Explicit load into the free device slot. */
  one_id = 3;
  BM_RET(bm, cs_bm_load(bm, &one_id, 1), 1, NULL);
  CHECK(md.tier[3] == CS_TIER_DEVICE && md.slot[3] == 3);
  run_plan(bm, dp, &pb, 1, __LINE__);
  CHECK(pb.src_tier[0] == CS_TIER_HOST && pb.src_slot[0] == 0 && pb.dst_slot[0] == 3);
  verify_bytes(bm, dp, __LINE__);
  INV(bm);

  /* Device full: load 4 only by evicting a block that orders before it.
   * Block 3 was used more recently than 4, so it stays... */
  one_id = 4;
  BM_RET(bm, cs_bm_load(bm, &one_id, 1), 0, NULL);
  CHECK_EQ(md.tier[4], CS_TIER_HOST);
  /* ...until its score puts it first. */
  {
    const int32_t sid = 3;
    const float sc = -1.0f;
    BM_OK(bm, cs_bm_set_scores(bm, &sid, &sc, 1));
  }
  BM_RET(bm, cs_bm_load(bm, &one_id, 1), 1, NULL);
  CHECK(md.tier[3] == CS_TIER_HOST && md.slot[3] == 0);
  CHECK(md.tier[4] == CS_TIER_DEVICE && md.slot[4] == 3);
  run_plan(bm, dp, &pb, 2, __LINE__);
  CHECK_EQ(pb.plan.num_stages, 2);
  verify_bytes(bm, dp, __LINE__);
  INV(bm);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 3);
  CHECK_EVENT(&ev, 0, CS_EVENT_LOADED, 3, CS_TIER_DEVICE);
  CHECK_EVENT(&ev, 1, CS_EVENT_DEMOTED, 3, CS_TIER_HOST);
  CHECK_EVENT(&ev, 2, CS_EVENT_LOADED, 4, CS_TIER_DEVICE);

  /* Loading 5 would have to evict its own parent 4 (the eviction head). */
  one_id = 5;
  BM_RET(bm, cs_bm_load(bm, &one_id, 1), 0, NULL);
  CHECK_EQ(md.tier[5], CS_TIER_HOST);

  /* Drop a host leaf; a block with children is skipped. */
  BM_RET(bm, cs_bm_drop(bm, &one_id, 1), 1, NULL);
  CHECK_EQ(md.tier[5], CS_TIER_FREE);
  one_id = 0;
  BM_RET(bm, cs_bm_drop(bm, &one_id, 1), 0, NULL);
  BM_RET(bm, cs_bm_evictable_blocks(bm, CS_TIER_HOST), 1, NULL);
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_HOST, 10), 1, NULL);
  CHECK_EQ(md.tier[3], CS_TIER_FREE);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_HOST), 0, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 2);
  CHECK_EVENT(&ev, 0, CS_EVENT_REMOVED, 5, CS_TIER_FREE);
  CHECK_EVENT(&ev, 1, CS_EVENT_REMOVED, 3, CS_TIER_FREE);
  run_plan(bm, dp, &pb, 0, __LINE__);
  verify_bytes(bm, dp, __LINE__);
  INV(bm);
  BM_OK(bm, cs_bm_lookup(bm, ha, 4, ids, MAXN, &lr));
  CHECK(lr.device_blocks == 3 && lr.host_blocks == 0);

  /* Recording off drops what is queued and queues nothing; on, events come back. */
  BM_RET(bm, cs_bm_set_record_events(bm, 2), CS_ERR_INVALID_ARGUMENT, "on must be 0 or 1, got 2");
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 1), 1, NULL);
  BM_OK(bm, cs_bm_pending_events(bm, &n));
  CHECK_EQ(n, 1);
  BM_OK(bm, cs_bm_set_record_events(bm, 0));
  BM_OK(bm, cs_bm_pending_events(bm, &n));
  CHECK_EQ(n, 0);
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_DEVICE, 1), 1, NULL);
  BM_OK(bm, cs_bm_pending_events(bm, &n));
  CHECK_EQ(n, 0);
  BM_OK(bm, cs_bm_set_record_events(bm, 1));
  BM_RET(bm, cs_bm_evict(bm, CS_TIER_HOST, 1), 1, NULL);
  CHECK_EQ(take_events(bm, &ev, __LINE__), 1);
  CHECK(ev.kind[0] == CS_EVENT_REMOVED);
  run_plan(bm, dp, &pb, 2, __LINE__);
  verify_bytes(bm, dp, __LINE__);
  INV(bm);

  cs_bm_destroy(bm);
  cs_dp_destroy(dp);
}

/* -------------------------------------------------- data plane directly */

static void test_data_plane(void) {
  cs_config c = make_config(BS, BYTES, 4, 2);
  cs_data_plane* dp;
  uint8_t buf[BYTES], back[BYTES], *ptr = NULL;
  int64_t bytes = 0;
  char err[256];
  int i;

  dp = cs_dp_create(&c, err, sizeof err);
  if (dp == NULL) fail_at(__LINE__, "dp create", err);
  DP_OK(dp, cs_dp_bytes_per_block(dp, &bytes));
  CHECK_EQ(bytes, BYTES);
  DP_RET(dp, cs_dp_blocks(dp, CS_TIER_DEVICE), 4, NULL);
  DP_RET(dp, cs_dp_blocks(dp, CS_TIER_HOST), 2, NULL);
  DP_RET(dp, cs_dp_blocks(dp, CS_TIER_FREE), CS_ERR_INVALID_ARGUMENT, "tier must be");

  /* Pools start zeroed. */
  DP_OK(dp, cs_dp_read_block(dp, CS_TIER_HOST, 1, 0, back, BYTES));
  for (i = 0; i < BYTES; ++i) CHECK_EQ(back[i], 0);

  for (i = 0; i < BYTES; ++i) buf[i] = (uint8_t)(i * 7 + 3);
  DP_OK(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 1, 0, buf, BYTES));
  DP_OK(dp, cs_dp_block_pointer(dp, CS_TIER_DEVICE, 1, &ptr));
  CHECK(ptr != NULL && memcmp(ptr, buf, BYTES) == 0);
  /* A partial write lands at its offset only. */
  DP_OK(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 1, 16, "ABCDEFGH", 8));
  DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 1, 0, back, BYTES));
  CHECK(memcmp(back, buf, 16) == 0 && memcmp(back + 16, "ABCDEFGH", 8) == 0 &&
        memcmp(back + 24, buf + 24, BYTES - 24) == 0);
  DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 1, 60, back, 4));
  CHECK(memcmp(back, buf + 60, 4) == 0);
  DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 1, BYTES, NULL, 0));

  DP_RET(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 4, 0, buf, BYTES), CS_ERR_INVALID_ARGUMENT,
         "slot 4 is out of range [0, 4)");
  DP_RET(dp, cs_dp_write_block(dp, CS_TIER_HOST, -1, 0, buf, BYTES), CS_ERR_INVALID_ARGUMENT,
         "slot -1 is out of range [0, 2)");
  DP_RET(dp, cs_dp_write_block(dp, 0, 0, 0, buf, BYTES), CS_ERR_INVALID_ARGUMENT, "tier must be");
  DP_RET(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 0, 60, buf, 8), CS_ERR_INVALID_ARGUMENT,
         "8 bytes at offset 60 do not fit a block of 64 bytes");
  DP_RET(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 0, -1, buf, 8), CS_ERR_INVALID_ARGUMENT,
         "do not fit");
  DP_RET(dp, cs_dp_write_block(dp, CS_TIER_DEVICE, 0, 0, NULL, 8), CS_ERR_INVALID_ARGUMENT,
         "data is NULL");
  DP_RET(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 0, 0, back, -1), CS_ERR_INVALID_ARGUMENT,
         "must be >= 0");
  DP_RET(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 0, 0, back, BYTES + 1),
         CS_ERR_INVALID_ARGUMENT, "do not fit");
  DP_RET(dp, cs_dp_block_pointer(dp, CS_TIER_DEVICE, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "out is NULL");

  /* Copies run in order: device 1 -> host 0 -> device 3. */
  {
    const uint8_t st[2] = {CS_TIER_DEVICE, CS_TIER_HOST};
    const int32_t ss[2] = {1, 0};
    const uint8_t dt[2] = {CS_TIER_HOST, CS_TIER_DEVICE};
    const int32_t ds[2] = {0, 3};
    uint8_t expect[BYTES];
    DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 1, 0, expect, BYTES));
    DP_OK(dp, cs_dp_execute(dp, st, ss, dt, ds, 2));
    DP_OK(dp, cs_dp_read_block(dp, CS_TIER_HOST, 0, 0, back, BYTES));
    CHECK(memcmp(expect, back, BYTES) == 0);
    DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 3, 0, back, BYTES));
    CHECK(memcmp(expect, back, BYTES) == 0);
    DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 1, 0, back, BYTES));
    CHECK(memcmp(expect, back, BYTES) == 0);
  }
  /* A bad entry anywhere copies nothing. */
  {
    const uint8_t st[2] = {CS_TIER_DEVICE, CS_TIER_DEVICE};
    const int32_t ss[2] = {1, 1};
    const uint8_t dt[2] = {CS_TIER_DEVICE, CS_TIER_HOST};
    const int32_t ds[2] = {2, 9};
    const uint8_t badt[1] = {5};
    DP_RET(dp, cs_dp_execute(dp, st, ss, dt, ds, 2), CS_ERR_INVALID_ARGUMENT,
           "destination slot 9 of copy 1 is out of range [0, 2)");
    DP_OK(dp, cs_dp_read_block(dp, CS_TIER_DEVICE, 2, 0, back, BYTES));
    for (i = 0; i < BYTES; ++i) CHECK_EQ(back[i], 0);
    DP_RET(dp, cs_dp_execute(dp, badt, ss, dt, ds, 1), CS_ERR_INVALID_ARGUMENT,
           "source tier 5 of copy 0 is not device (1) or host (2)");
    DP_RET(dp, cs_dp_execute(dp, st, ss, dt, ds, -1), CS_ERR_INVALID_ARGUMENT, "must be >= 0");
    DP_RET(dp, cs_dp_execute(dp, st, NULL, dt, ds, 1), CS_ERR_INVALID_ARGUMENT,
           "src_slot is NULL");
    DP_OK(dp, cs_dp_execute(dp, NULL, NULL, NULL, NULL, 0));
    DP_RET(dp, cs_dp_execute_plan(dp, NULL), CS_ERR_INVALID_ARGUMENT, "plan is NULL");
  }
  cs_dp_destroy(dp);

  /* Zero-byte blocks: valid, and there is no memory to point at. */
  c = make_config(BS, 0, 2, 0);
  dp = cs_dp_create(&c, err, sizeof err);
  if (dp == NULL) fail_at(__LINE__, "dp create", err);
  ptr = buf;
  DP_OK(dp, cs_dp_block_pointer(dp, CS_TIER_DEVICE, 1, &ptr));
  CHECK(ptr == NULL);
  {
    const uint8_t t[1] = {CS_TIER_DEVICE};
    const int32_t s0[1] = {0}, s1[1] = {1};
    DP_OK(dp, cs_dp_execute(dp, t, s0, t, s1, 1));
  }
  cs_dp_destroy(dp);
}

/* -------------------------------------------------------- misuse errors */

static void test_errors(void) {
  cs_config c = make_config(BS, 0, 4, 0);
  cs_block_manager* bm;
  cs_admit_result ar;
  cs_lookup_result lr;
  cs_request_tags tags;
  uint32_t tokens[32];
  uint64_t h[8];
  int32_t ids[MAXN], table[MAXN], n;
  double clock_before, clock_after;
  char err[256], small[16];

  make_tokens(tokens, 32, 1);
  CHECK_EQ(hash_tokens(tokens, 32, h), 8);
  bm = cs_bm_create(&c, err, sizeof err);
  if (bm == NULL) fail_at(__LINE__, "create", err);

  /* Unknown requests. */
  BM_RET(bm, cs_bm_append(bm, 77, 1, NULL, 0, ids, MAXN, &n), CS_ERR_INVALID_ARGUMENT,
         "append: unknown request 77");
  BM_RET(bm, cs_bm_commit(bm, 77, 1, ids, table, MAXN, &n), CS_ERR_INVALID_ARGUMENT,
         "commit: unknown request 77");
  BM_RET(bm, cs_bm_release(bm, 77), CS_ERR_INVALID_ARGUMENT,
         "release: unknown request 77 (never admitted or already released)");
  BM_RET(bm, cs_bm_request_blocks(bm, 77, ids, table, MAXN, &n), CS_ERR_INVALID_ARGUMENT,
         "request_blocks: unknown request 77");
  BM_RET(bm, cs_bm_has_request(bm, 77), 0, NULL);
  /* Bad arguments are reported before the unknown request. */
  BM_RET(bm, cs_bm_append(bm, 77, -1, NULL, 0, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "append: numTokens must be >= 0");
  BM_RET(bm, cs_bm_append(bm, 77, 1, NULL, 1, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "append: hashes is NULL");
  BM_RET(bm, cs_bm_commit(bm, 77, -1, NULL, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "commit: numBlocks must be >= 0");
  BM_RET(bm, cs_bm_commit(bm, 77, 1, ids, table, -1, NULL), CS_ERR_INVALID_ARGUMENT,
         "commit: capacity must be >= 0");
  BM_RET(bm, cs_bm_request_blocks(bm, 77, ids, table, -1, NULL), CS_ERR_INVALID_ARGUMENT,
         "capacity must be >= 0");
  INV(bm);

  /* Admission misuse: each fails before any state changes. */
  BM_OK(bm, cs_bm_clock(bm, &clock_before));
  BM_RET(bm, cs_bm_admit(bm, -1, h, 1, 4, NULL, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "request id must be >= 0");
  BM_RET(bm, cs_bm_admit(bm, 1, h, 1, 0, NULL, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "numTokens must be >= 1");
  BM_RET(bm, cs_bm_admit(bm, 1, h, 3, 8, NULL, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "3 block hashes for 8 tokens (at most 2 full blocks)");
  BM_RET(bm, cs_bm_admit(bm, 1, NULL, 2, 8, NULL, ids, table, MAXN, &ar),
         CS_ERR_INVALID_ARGUMENT, "hashes is NULL but its count is 2");
  BM_RET(bm, cs_bm_admit(bm, 1, h, -1, 8, NULL, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "hashes count must be >= 0, got -1");
  BM_RET(bm, cs_bm_admit(bm, 1, h, 1, 8, NULL, ids, table, MAXN, NULL), CS_ERR_INVALID_ARGUMENT,
         "result is NULL");
  BM_RET(bm, cs_bm_admit(bm, 1, h, 1, 8, NULL, ids, table, -3, &ar), CS_ERR_INVALID_ARGUMENT,
         "capacity must be >= 0");
  BM_RET(bm, cs_bm_admit(bm, 1, h, 5, 20, NULL, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "needs 5 blocks but the device tier holds 4");
  tags.workload = -1;
  tags.agent = 64;
  tags.session = -1;
  BM_RET(bm, cs_bm_admit(bm, 1, h, 1, 8, &tags, ids, table, MAXN, &ar), CS_ERR_INVALID_ARGUMENT,
         "agent must be in [-1, 63], got 64");
  /* Capacity: fails up front, reports the need, writes nothing. */
  ids[2] = -7;
  table[2] = -7;
  BM_RET(bm, cs_bm_admit(bm, 1, h, 2, 9, NULL, ids, table, 2, &ar), CS_ERR_BUFFER_TOO_SMALL,
         "needs 3 block entries but the buffers hold 2");
  CHECK_EQ(ar.num_blocks, 3);
  CHECK(ids[2] == -7 && table[2] == -7);
  BM_RET(bm, cs_bm_admit(bm, 1, h, 2, 9, NULL, NULL, table, 2, &ar), CS_ERR_BUFFER_TOO_SMALL,
         NULL);
  BM_RET(bm, cs_bm_has_request(bm, 1), 0, NULL);
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 0, NULL);
  BM_OK(bm, cs_bm_clock(bm, &clock_after));
  CHECK(clock_before == clock_after);
  INV(bm);

  /* Outputs not wanted: NULL arrays with no capacity are fine. */
  BM_RET(bm, cs_bm_admit(bm, 1, h, 2, 9, NULL, NULL, NULL, 0, &ar), 1, NULL);
  CHECK_EQ(ar.num_blocks, 3);
  BM_RET(bm, cs_bm_admit(bm, 1, h, 2, 9, NULL, NULL, NULL, 0, &ar), CS_ERR_INVALID_ARGUMENT,
         "request 1 is already admitted");
  BM_RET(bm, cs_bm_append(bm, 1, -1, NULL, 0, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "numTokens must be >= 0");
  BM_RET(bm, cs_bm_append(bm, 1, 4, h + 2, 2, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "4 block hashes but only 3 full blocks");
  BM_RET(bm, cs_bm_append(bm, 1, 4, NULL, 1, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "hashes is NULL");
  BM_RET(bm, cs_bm_append(bm, 1, 100, NULL, 0, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
         "would need more blocks than the device tier holds (4)");
  BM_RET(bm, cs_bm_append(bm, 1, 3, h + 2, 1, NULL, 0, &n), 1, NULL);
  CHECK_EQ(n, 0);
  BM_OK(bm, cs_bm_request_blocks(bm, 1, NULL, NULL, 0, &n));
  CHECK_EQ(n, 3);
  INV(bm);
  /* Request 2 takes the last free block; then nothing is free or evictable. */
  BM_RET(bm, cs_bm_admit(bm, 2, NULL, 0, 4, NULL, ids, table, MAXN, &ar), 1, NULL);
  CHECK(ids[0] == 3 && table[0] == 3);
  BM_RET(bm, cs_bm_admit(bm, 4, NULL, 0, 1, NULL, ids, table, MAXN, &ar), 0, NULL);
  n = -1;
  BM_RET(bm, cs_bm_append(bm, 1, 1, NULL, 0, ids, MAXN, &n), 0, NULL);
  CHECK_EQ(n, 0);
  BM_OK(bm, cs_bm_request_blocks(bm, 1, NULL, NULL, 0, &n));
  CHECK_EQ(n, 3);
  BM_OK(bm, cs_bm_release(bm, 2));
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 3, NULL);
  INV(bm);

  /* Lookup misuse. */
  BM_RET(bm, cs_bm_lookup(bm, h, -1, ids, MAXN, &lr), CS_ERR_INVALID_ARGUMENT, "must be >= 0");
  BM_RET(bm, cs_bm_lookup(bm, h, 5, ids, MAXN, &lr), CS_ERR_INVALID_ARGUMENT,
         "5 blocks exceed the manager's capacity of 4 blocks");
  BM_RET(bm, cs_bm_lookup(bm, NULL, 1, ids, MAXN, &lr), CS_ERR_INVALID_ARGUMENT,
         "hashes is NULL");
  BM_RET(bm, cs_bm_lookup(bm, h, 1, ids, MAXN, NULL), CS_ERR_INVALID_ARGUMENT, "result is NULL");

  /* A hash that is cached under a different parent is refused at commit.
   * Admitting request 3 takes the free block and evicts (drops) leaf 2. */
  BM_OK(bm, cs_bm_commit(bm, 1, 3, NULL, NULL, 0, NULL));
  BM_OK(bm, cs_bm_release(bm, 1));
  {
    uint64_t bogus[2];
    bogus[0] = 0x1234;
    bogus[1] = h[1];
    BM_RET(bm, cs_bm_admit(bm, 3, bogus, 2, 8, NULL, ids, table, MAXN, &ar), 1, NULL);
    CHECK(ar.cached_device_tokens == 0 && ar.num_blocks == 2);
    BM_RET(bm, cs_bm_commit(bm, 3, 2, NULL, NULL, 0, NULL), CS_ERR_INVALID_ARGUMENT,
           "block hash at position 1 of request 3 is cached under a different prefix");
    INV(bm);
    BM_OK(bm, cs_bm_release(bm, 3));
  }
  INV(bm);

  /* Other null outputs. */
  BM_RET(bm, cs_bm_metadata(bm, NULL), CS_ERR_INVALID_ARGUMENT, "out is NULL");
  BM_RET(bm, cs_bm_config(bm, NULL), CS_ERR_INVALID_ARGUMENT, "out is NULL");
  BM_RET(bm, cs_bm_clock(bm, NULL), CS_ERR_INVALID_ARGUMENT, "out is NULL");
  BM_RET(bm, cs_bm_pending_events(bm, NULL), CS_ERR_INVALID_ARGUMENT, "count is NULL");
  BM_RET(bm, cs_bm_drop(bm, NULL, 2), CS_ERR_INVALID_ARGUMENT, "ids is NULL");
  BM_RET(bm, cs_bm_load(bm, ids, -2), CS_ERR_INVALID_ARGUMENT, "must be >= 0");
  BM_RET(bm, cs_bm_set_all_scores(bm, NULL, 4), CS_ERR_INVALID_ARGUMENT, "scores is NULL");
  /* A success clears the previous error. */
  BM_RET(bm, cs_bm_used_blocks(bm, CS_TIER_DEVICE), 2, NULL);
  CHECK_EQ(cs_bm_last_error(bm)[0], '\0');

  /* Invariant reporting with and without a message buffer, and truncation. */
  CHECK_EQ(cs_bm_check_invariants(bm, NULL, 0), CS_OK);
  memset(small, 'x', sizeof small);
  CHECK_EQ(cs_bm_check_invariants(bm, small, sizeof small), CS_OK);
  CHECK_EQ(small[0], '\0');
  cs_bm_destroy(bm);
}

int main(void) {
  test_create_and_misc();
  test_hashing();
  test_requests();
  test_eviction_order();
  test_score_classes();
  test_bytes();
  test_data_plane();
  test_errors();
  printf("capi_test: %ld checks passed\n", g_checks);
  return 0;
}
