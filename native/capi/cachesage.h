/*
 * cachesage C ABI: the paged KV block manager and the CPU data plane for C
 * and C++ engines (link libcachesage) and for Python (load it with ctypes).
 *
 * The header is plain C (C89 with <stdint.h>, C99, or C++). It is a thin
 * layer over the C++ core in native/core; block_manager.h there documents
 * the model in full (tiers, stable block ids, the hash-chained radix tree,
 * eviction order, copy plans, events, invariants).
 *
 * Conventions
 * -----------
 * - Every function that can fail returns int32_t. Negative values are
 *   CS_ERR_* status codes; zero or positive values are CS_OK or the result
 *   the function documents (a count, or 1/0 for yes/no).
 * - On failure nothing changes: the core checks its arguments before it
 *   mutates anything, and this layer checks buffers and pointers before it
 *   calls the core. The exceptions are CS_ERR_OUT_OF_MEMORY and
 *   CS_ERR_INTERNAL (a broken core invariant), which can strike mid-way;
 *   destroy the handle after either.
 * - cs_bm_last_error() / cs_dp_last_error() give a readable message for the
 *   most recent call on that handle: "" when it succeeded. Functions without
 *   a handle (creation, hashing) write their message into a caller buffer
 *   `err` of `err_size` bytes (always NUL-terminated, truncated to fit;
 *   err may be NULL).
 * - No C++ exception ever crosses this boundary.
 * - Pointers to input arrays may be NULL only when their count is 0.
 *   Output arrays have a stated capacity; a result that does not fit fails
 *   with CS_ERR_BUFFER_TOO_SMALL, reports the needed size, and changes no
 *   state (nothing is written past any capacity, nothing is lost).
 * - A handle is not thread-safe: use each one from one thread at a time.
 *   Distinct handles are independent.
 */
#ifndef CACHESAGE_H
#define CACHESAGE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(CACHESAGE_BUILDING_CAPI)
#define CS_API __declspec(dllexport)
#else
#define CS_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define CS_API __attribute__((visibility("default")))
#else
#define CS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature or struct layout changes, so a binding can
 * refuse a library it does not match. */
#define CS_ABI_VERSION 2

/* ------------------------------------------------------------- constants */

/* Status codes. */
#define CS_OK 0
/* Caller misuse: NULL handle or pointer, negative count, bad config, block
 * id out of range or free, unknown or duplicate request id, bad tier, ... */
#define CS_ERR_INVALID_ARGUMENT (-1)
/* An output buffer is too small; the needed size has been reported. */
#define CS_ERR_BUFFER_TOO_SMALL (-2)
#define CS_ERR_OUT_OF_MEMORY (-3)
/* cs_bm_check_invariants found a broken invariant. */
#define CS_ERR_INVARIANT (-4)
/* The core detected an inconsistency of its own (a bug). */
#define CS_ERR_INTERNAL (-5)

/* Tiers, as stored in cs_metadata.tier and used by copy plans and events. */
#define CS_TIER_FREE 0
#define CS_TIER_DEVICE 1
#define CS_TIER_HOST 2

/* Event kinds. */
#define CS_EVENT_STORED 1  /* committed: the block's hash entered the index */
#define CS_EVENT_REMOVED 2 /* dropped from the cache; tier is CS_TIER_FREE */
#define CS_EVENT_DEMOTED 3 /* moved device -> host */
#define CS_EVENT_LOADED 4  /* moved host -> device */

/* A block id that means "none" (e.g. cs_metadata.parent of a chain's first
 * block). */
#define CS_NO_BLOCK (-1)
/* Agents are bits of a 64-bit mask: 0..CS_MAX_AGENT. */
#define CS_MAX_AGENT 63

/* ----------------------------------------------------------------- types */

typedef struct cs_block_manager cs_block_manager;
typedef struct cs_data_plane cs_data_plane;

typedef struct cs_config {
  int64_t bytes_per_block; /* KV bytes per block, >= 0 (0: metadata only) */
  int32_t block_size;      /* tokens per block, 1..2^20 */
  int32_t device_blocks;   /* device-tier capacity, >= 1 */
  int32_t host_blocks;     /* host-tier capacity, >= 0 (0: no host tier) */
  int32_t max_classes;     /* score classes, 0..2^24 (0: blocks are scored singly only) */
} cs_config;

/* Who a request belongs to; -1 means untagged. */
typedef struct cs_request_tags {
  int32_t workload; /* >= -1 */
  int32_t agent;    /* -1..CS_MAX_AGENT */
  int32_t session;  /* >= -1 */
} cs_request_tags;

typedef struct cs_lookup_result {
  int32_t device_blocks; /* leading matched blocks on device */
  int32_t host_blocks;   /* matched blocks after those, on host */
  int32_t num_ids;       /* device_blocks + host_blocks: ids needed/written */
} cs_lookup_result;

typedef struct cs_admit_result {
  int32_t cached_device_tokens; /* leading prompt tokens already on device */
  int32_t loaded_blocks;        /* host blocks loaded (in the copy plan) */
  int32_t num_blocks;           /* blocks of the request: ids needed/written */
} cs_admit_result;

/*
 * A copy plan in caller memory. Copy i moves the block at (src_tier[i],
 * src_slot[i]) to (dst_tier[i], dst_slot[i]). Copies run in order; the
 * copies of stage k, [stage_starts[k], stage_starts[k+1]) (the last stage
 * ends at count), do not conflict with each other, so a backend may run one
 * stage's copies in any order or in parallel.
 *
 * The caller sets the array pointers and capacities; the library sets count
 * and num_stages. stage_starts may be NULL when the stages are not wanted.
 */
typedef struct cs_copy_plan {
  uint8_t* src_tier;
  int32_t* src_slot;
  uint8_t* dst_tier;
  int32_t* dst_slot;
  int32_t capacity; /* entries in each of the four arrays above */
  int32_t* stage_starts;
  int32_t stage_capacity; /* entries in stage_starts */
  int32_t count;          /* out: copies (needed, on CS_ERR_BUFFER_TOO_SMALL) */
  int32_t num_stages;     /* out: stages (likewise) */
} cs_copy_plan;

/* Block events in caller memory: the caller sets the arrays and capacity,
 * the library sets count. */
typedef struct cs_events {
  uint8_t* kind;   /* CS_EVENT_* */
  int32_t* block;  /* block id */
  uint64_t* hash;  /* the block's hash */
  uint8_t* tier;   /* tier after the event */
  int32_t capacity;
  int32_t count; /* out: events (needed, on CS_ERR_BUFFER_TOO_SMALL) */
} cs_events;

/*
 * Read-only views of the block metadata, one entry per block id in
 * [0, num_blocks). The pointers stay valid, and keep reflecting the current
 * state, until the manager is destroyed. Values of free ids are meaningless.
 */
typedef struct cs_metadata {
  int32_t num_blocks; /* device_blocks + host_blocks */
  const uint8_t* tier;            /* CS_TIER_* */
  const uint8_t* committed;       /* 1 when the hash is in the index */
  const int32_t* slot;            /* slot within its tier, -1 when free */
  const int32_t* ref_count;       /* running requests holding it */
  const double* last_access;      /* logical clock of the last use */
  const uint32_t* access_count;
  const int32_t* workload;        /* -1: untagged or used by several */
  const uint64_t* agent_mask;     /* bit a: agent a used it */
  const int32_t* session;         /* -1: untagged or shared */
  const int32_t* depth;           /* position in its chain, 0 = first */
  const int32_t* cached_children; /* committed children, any tier */
  const int32_t* device_children; /* committed children on device */
  const uint64_t* hash;
  const int32_t* parent;          /* CS_NO_BLOCK for a chain's first block */
  const float* score;             /* eviction score, lower goes first */
  const int32_t* score_class;     /* -1: ordered by score; else by class_score[score_class] */
  int32_t num_classes;            /* max_classes */
  const float* class_score;       /* per score class */
} cs_metadata;

/* ------------------------------------------------------------ general */

/* CS_ABI_VERSION of the library actually loaded. */
CS_API int32_t cs_abi_version(void);

/* A static name for a status code ("CS_OK", "CS_ERR_INVALID_ARGUMENT", ...). */
CS_API const char* cs_status_string(int32_t status);

/*
 * Writes floor(count / block_size) chained block hashes of `tokens` to
 * `out` (capacity `out_capacity`) and their number to *written. `parent` is
 * the hash of the block before tokens[0], 0 for the start of a prompt.
 * Returns CS_OK, or CS_ERR_BUFFER_TOO_SMALL with *written set to the needed
 * count, or CS_ERR_INVALID_ARGUMENT.
 */
CS_API int32_t cs_hash_token_blocks(const uint32_t* tokens, int64_t count, int32_t block_size,
                                    uint64_t parent, uint64_t* out, int32_t out_capacity,
                                    int32_t* written, char* err, size_t err_size);

/* --------------------------------------------------------- block manager */

/* NULL on a bad config (the reason is written to err) or out of memory. */
CS_API cs_block_manager* cs_bm_create(const cs_config* config, char* err, size_t err_size);
/* NULL is ignored. Invalidates the metadata pointers. */
CS_API void cs_bm_destroy(cs_block_manager* bm);
/* Never NULL; owned by the handle, valid until its next call or destroy. */
CS_API const char* cs_bm_last_error(const cs_block_manager* bm);

CS_API int32_t cs_bm_config(const cs_block_manager* bm, cs_config* out);
/* device_blocks + host_blocks: the size of every per-id array. */
CS_API int32_t cs_bm_num_block_ids(const cs_block_manager* bm);
/* The logical clock: ticks once per admit, append, commit and release. */
CS_API int32_t cs_bm_clock(const cs_block_manager* bm, double* out);
CS_API int32_t cs_bm_metadata(const cs_block_manager* bm, cs_metadata* out);

/*
 * Longest cached prefix of `hashes` (full-block hashes in prompt order,
 * count <= number of block ids). Pure. The matched ids go to `ids` (may be
 * NULL when not wanted); *result is always filled on success and on
 * CS_ERR_BUFFER_TOO_SMALL.
 */
CS_API int32_t cs_bm_lookup(const cs_block_manager* bm, const uint64_t* hashes, int32_t count,
                            int32_t* ids, int32_t ids_capacity, cs_lookup_result* result);

/*
 * Admits request `request_id` (>= 0, not already admitted) with `num_tokens`
 * prompt tokens whose first `hash_count` full blocks have the given hashes
 * (hash_count <= num_tokens / block_size). Pins the cached prefix, loads its
 * host part to device and allocates device blocks for the rest, evicting by
 * score (demoting to host before dropping); the copies go to the copy plan.
 * tags may be NULL (untagged).
 *
 * block_ids and block_table (the device slot of each block) may each be NULL
 * when not wanted; a non-NULL one must hold ceil(num_tokens / block_size)
 * entries (`capacity`), checked before anything changes.
 *
 * Returns 1 when admitted (result filled), 0 when the device tier cannot
 * hold the request now (no state change), or a negative status; on
 * CS_ERR_BUFFER_TOO_SMALL result->num_blocks is the capacity needed.
 */
CS_API int32_t cs_bm_admit(cs_block_manager* bm, int64_t request_id, const uint64_t* hashes,
                           int32_t hash_count, int32_t num_tokens, const cs_request_tags* tags,
                           int32_t* block_ids, int32_t* block_table, int32_t capacity,
                           cs_admit_result* result);

/*
 * Grows a running request by `num_tokens` (>= 0) tokens and records the
 * hashes of blocks that became full (in order, after those already known).
 * The ids of new blocks go to new_block_ids (may be NULL when not wanted;
 * otherwise it must hold ceil(num_tokens / block_size) entries, the most one
 * call can add) and their number to *num_new (may be NULL).
 * Returns 1 when appended, 0 when the device tier cannot hold the new blocks
 * now (no state change), or a negative status.
 */
CS_API int32_t cs_bm_append(cs_block_manager* bm, int64_t request_id, int32_t num_tokens,
                            const uint64_t* hashes, int32_t hash_count, int32_t* new_block_ids,
                            int32_t capacity, int32_t* num_new);

/*
 * Commits the request's first `num_blocks` blocks (all with known hashes)
 * into the hash index. A block whose hash is already cached is replaced in
 * the request by the cached block, so the request's ids and device slots may
 * change: they are written to block_ids / block_table (each may be NULL;
 * a non-NULL one must hold the request's block count), their number to
 * *num_blocks_out (may be NULL).
 */
CS_API int32_t cs_bm_commit(cs_block_manager* bm, int64_t request_id, int32_t num_blocks,
                            int32_t* block_ids, int32_t* block_table, int32_t capacity,
                            int32_t* num_blocks_out);

/* Unpins the request's blocks: committed ones stay cached, others are freed. */
CS_API int32_t cs_bm_release(cs_block_manager* bm, int64_t request_id);

/* 1 when the request is running, 0 when not. */
CS_API int32_t cs_bm_has_request(const cs_block_manager* bm, int64_t request_id);
CS_API int32_t cs_bm_num_requests(const cs_block_manager* bm);
/* The request's current block ids and device slots, like cs_bm_commit. */
CS_API int32_t cs_bm_request_blocks(const cs_block_manager* bm, int64_t request_id,
                                    int32_t* block_ids, int32_t* block_table, int32_t capacity,
                                    int32_t* num_blocks_out);

/* Eviction scores (finite; lower is evicted first; default 0). */
CS_API int32_t cs_bm_set_scores(cs_block_manager* bm, const int32_t* ids, const float* scores,
                                int32_t count);
/* One score per block id: count must equal cs_bm_num_block_ids(). */
CS_API int32_t cs_bm_set_all_scores(cs_block_manager* bm, const float* scores, int32_t count);
/* Files blocks under score classes (-1: none): a classed block is ordered by
 * its class's score instead of its own. A freed block starts classless. */
CS_API int32_t cs_bm_set_score_classes(cs_block_manager* bm, const int32_t* ids,
                                       const int32_t* classes, int32_t count);
/* Sets class scores (finite); O(log classes) each, however many blocks. */
CS_API int32_t cs_bm_set_class_scores(cs_block_manager* bm, const int32_t* classes,
                                      const float* scores, int32_t count);

/*
 * Explicit actions; each returns how many blocks it moved (>= 0). Ids that
 * are not eligible now (pinned, with children in the way, in the wrong tier)
 * are skipped; ids out of range or free fail the whole call.
 * evict: up to `count` blocks of `tier` in eviction order; device blocks are
 *   demoted to host when there is room, dropped otherwise.
 * demote: device -> host. drop: remove from the cache (needs no children).
 * load: host -> device, never by evicting a device block that orders after
 *   the block being loaded.
 */
CS_API int32_t cs_bm_evict(cs_block_manager* bm, int32_t tier, int32_t count);
CS_API int32_t cs_bm_demote(cs_block_manager* bm, const int32_t* ids, int32_t count);
CS_API int32_t cs_bm_drop(cs_block_manager* bm, const int32_t* ids, int32_t count);
CS_API int32_t cs_bm_load(cs_block_manager* bm, const int32_t* ids, int32_t count);

/* Counts (>= 0) or a negative status. tier: CS_TIER_DEVICE or CS_TIER_HOST. */
CS_API int32_t cs_bm_used_blocks(const cs_block_manager* bm, int32_t tier);
CS_API int32_t cs_bm_evictable_blocks(const cs_block_manager* bm, int32_t tier);
CS_API int32_t cs_bm_pinned_device_blocks(const cs_block_manager* bm);

/*
 * Sizes of the copy plan and of the events a take would return now, for
 * sizing buffers (either out pointer may be NULL).
 */
CS_API int32_t cs_bm_pending_copy_plan(const cs_block_manager* bm, int32_t* count,
                                       int32_t* num_stages);
CS_API int32_t cs_bm_pending_events(cs_block_manager* bm, int32_t* count);

/*
 * Moves the pending copy plan into `plan` and clears it. The engine must run
 * the copies (in order) before it reuses any slot they read or write. When
 * the plan does not fit (count > capacity, or stage_starts is non-NULL and
 * num_stages > stage_capacity), returns CS_ERR_BUFFER_TOO_SMALL with
 * plan->count and plan->num_stages set to the sizes needed and the plan kept
 * whole for the next call. An empty plan yields count 0 and CS_OK.
 */
CS_API int32_t cs_bm_take_copy_plan(cs_block_manager* bm, cs_copy_plan* plan);

/*
 * Moves the pending events, oldest first, into `events` and clears them;
 * all-or-nothing like cs_bm_take_copy_plan (events->count reports the
 * needed size, and events that arrive meanwhile queue up behind the kept
 * ones).
 */
CS_API int32_t cs_bm_take_events(cs_block_manager* bm, cs_events* events);

/*
 * Whether block events are recorded from now on (on: 1, the default, or 0).
 * An engine that never takes events turns them off so they do not pile
 * up: nothing is queued from then on, and what was queued is dropped. No
 * decision depends on it. CS_ERR_INVALID_ARGUMENT for any other value.
 */
CS_API int32_t cs_bm_set_record_events(cs_block_manager* bm, int32_t on);

/*
 * Full structural check, O(blocks). CS_OK when every invariant holds;
 * otherwise CS_ERR_INVARIANT with a description of the first broken one in
 * msg (may be NULL) and in cs_bm_last_error().
 */
CS_API int32_t cs_bm_check_invariants(const cs_block_manager* bm, char* msg, size_t msg_size);

/* ----------------------------------------------------------- data plane */

/*
 * The device and host KV pools as host memory (bytes_per_block x
 * device_blocks and x host_blocks, zero-filled; block_size is unused), and
 * the executor of copy plans. NULL on a bad config (reason in err) or when
 * the pools cannot be allocated.
 */
CS_API cs_data_plane* cs_dp_create(const cs_config* config, char* err, size_t err_size);
CS_API void cs_dp_destroy(cs_data_plane* dp);
CS_API const char* cs_dp_last_error(const cs_data_plane* dp);

CS_API int32_t cs_dp_bytes_per_block(const cs_data_plane* dp, int64_t* out);
/* Slots in `tier`. */
CS_API int32_t cs_dp_blocks(const cs_data_plane* dp, int32_t tier);

/*
 * Runs `count` copies in order. Every entry is validated first; on a bad
 * tier or slot nothing is copied.
 */
CS_API int32_t cs_dp_execute(cs_data_plane* dp, const uint8_t* src_tier, const int32_t* src_slot,
                             const uint8_t* dst_tier, const int32_t* dst_slot, int32_t count);
/* The same for a plan filled by cs_bm_take_copy_plan (uses plan->count). */
CS_API int32_t cs_dp_execute_plan(cs_data_plane* dp, const cs_copy_plan* plan);

/* Copies `size` bytes into / out of the block at (tier, slot), starting at
 * byte `offset` of the block; offset + size <= bytes_per_block. */
CS_API int32_t cs_dp_write_block(cs_data_plane* dp, int32_t tier, int32_t slot, int64_t offset,
                                 const void* data, int64_t size);
CS_API int32_t cs_dp_read_block(const cs_data_plane* dp, int32_t tier, int32_t slot,
                                int64_t offset, void* out, int64_t size);
/* The block's memory itself (bytes_per_block bytes, valid until destroy);
 * NULL in *out when bytes_per_block is 0. */
CS_API int32_t cs_dp_block_pointer(cs_data_plane* dp, int32_t tier, int32_t slot, uint8_t** out);

/* ------------------------------------------------------- runtime client */

/*
 * The agent-aware runtime (its policies: observe, admit, prefill done,
 * decode, release, act, predict) lives in the `cachesage serve` sidecar; a
 * cs_runtime is a client of it over one HTTP/1.1 keep-alive TCP connection
 * (JSON bodies; docs/serving.md has the API, docs/c-abi.md this client).
 * Decisions are the sidecar runtime's, exactly as the in-process API makes
 * them. POSIX only.
 *
 * - Every function returns a status as above; a verb answered with a 4xx is
 *   reported with the sidecar's message, which names the field, prefixed by
 *   the verb: "admit: sidecar answered 400: body.hashes[0] must be ...".
 *   cs_runtime_http_status() gives the HTTP status of the last reply.
 * - Unlike the block manager, a failed call may have taken effect: a reply
 *   lost to a timeout or a dropped connection (CS_ERR_IO) may answer a verb
 *   the sidecar applied. Output buffers whose size is known beforehand
 *   (admit's block table) are checked before anything is sent.
 * - Copy plans of all verbs queue up in the handle, in order; take them with
 *   cs_runtime_take_copy_plan() before using the blocks they fill.
 * - Times are seconds on any monotonic clock, as in the in-process API;
 *   CS_TIME_NOW (any negative time) lets the sidecar use its own clock.
 * - A handle is not thread-safe; distinct handles are independent.
 */

/* The sidecar could not be reached, or the connection failed or timed out. */
#define CS_ERR_IO (-6)
/* A reply that is not the sidecar's protocol (bad HTTP, JSON or fields). */
#define CS_ERR_PROTOCOL (-7)
/* 401 or 403: no token, an unknown one, or one without access. */
#define CS_ERR_DENIED (-8)
/* 429 (rate limit) or 503 (shutting down): try again later. */
#define CS_ERR_BUSY (-9)

#define CS_TIME_NOW (-1.0)

/* Framework event types for cs_runtime_observe(). */
#define CS_OBSERVE_SESSION_START 1 /* session, workload */
#define CS_OBSERVE_STEP_START 2    /* session, workload, agent */
#define CS_OBSERVE_STEP_END 3      /* session, workload, agent */
#define CS_OBSERVE_TOOL_START 4    /* session, workload, agent, tool */
#define CS_OBSERVE_TOOL_END 5      /* session, workload, agent, tool */
#define CS_OBSERVE_SESSION_END 6   /* session */

typedef struct cs_runtime cs_runtime;

/* The sidecar's block layout, read at connect. */
typedef struct cs_runtime_info {
  int32_t block_size;
  int32_t device_blocks;
  int32_t host_blocks;
} cs_runtime_info;

typedef struct cs_runtime_admission {
  int32_t cached_device_tokens; /* leading prompt tokens already on device */
  int32_t loaded_blocks;        /* host blocks being loaded (in the copy plan) */
  int32_t num_blocks;           /* blocks of the request: ids written */
} cs_runtime_admission;

typedef struct cs_act_result {
  int32_t demoted;
  int32_t evicted;
  int32_t prefetched;
  int32_t pinned;
  int32_t unpinned;
  int32_t num_actions; /* actions the policies asked for, merged */
} cs_act_result;

typedef struct cs_agent_probability {
  const char* agent; /* "<end>" stands for the session ending */
  double probability;
} cs_agent_probability;

/* A prediction, owned by the handle: valid until its next call or close. */
typedef struct cs_prediction {
  const char* session;
  const char* workload;
  const char* current_agent; /* NULL before the session's first step */
  int32_t horizon;
  double alive; /* P(the session is alive after horizon steps) */
  int32_t has_seconds_to_next_step;
  double seconds_to_next_step; /* when has_seconds_to_next_step is 1 */
  int32_t num_next;
  const cs_agent_probability* next; /* next-agent distribution */
  int32_t num_reuse_within;
  const cs_agent_probability* reuse_within; /* P(agent runs within horizon steps) */
} cs_prediction;

/*
 * Connects to the sidecar at host:port (a name or an IPv4/IPv6 address)
 * and reads its block layout (GET /v1/info, which also proves the token).
 * token: the bearer token, NULL or "" when the sidecar has none.
 * timeout_ms: for connecting and for each reply, > 0, or 0 for 30 s.
 * On failure *out is NULL and the reason is in err.
 */
CS_API int32_t cs_runtime_connect(const char* host, int32_t port, const char* token,
                                  int32_t timeout_ms, cs_runtime** out, char* err,
                                  size_t err_size);
/* Closes the connection; NULL is ignored. Pending copies are dropped. */
CS_API void cs_runtime_close(cs_runtime* rt);
/* Never NULL; "" after a call that succeeded; for cs_runtime_observe() that
 * returned 0, why the runtime ignored the event. Valid until the next call. */
CS_API const char* cs_runtime_last_error(const cs_runtime* rt);
/* HTTP status of the last reply; 0 when the last call got none. */
CS_API int32_t cs_runtime_http_status(const cs_runtime* rt);
CS_API int32_t cs_runtime_get_info(const cs_runtime* rt, cs_runtime_info* out);

/*
 * A framework event (CS_OBSERVE_*): the fields the type names are required,
 * the others must be NULL. Returns 1 when applied, 0 when the runtime
 * ignored it (it does not fit the sessions: the reason is in
 * cs_runtime_last_error()), or a negative status.
 */
CS_API int32_t cs_runtime_observe(cs_runtime* rt, int32_t type, double time, const char* session,
                                  const char* workload, const char* agent, const char* tool);

/*
 * Admits request `request_id` (in [0, 2^52), not live) with `num_tokens`
 * prompt tokens whose first `hash_count` full blocks have the given hashes.
 * session, workload and agent may be NULL (untagged); workload and agent go
 * together. block_ids and block_table (device slot of each block) may each
 * be NULL; a non-NULL one must hold ceil(num_tokens / block_size) entries
 * (`capacity`), checked before the request is sent.
 * Returns 1 when admitted (result filled; result may be NULL), 0 when the
 * device tier cannot hold it now, or a negative status.
 */
CS_API int32_t cs_runtime_admit(cs_runtime* rt, int64_t request_id, const uint64_t* hashes,
                                int32_t hash_count, int32_t num_tokens, const char* session,
                                const char* workload, const char* agent, double time,
                                int32_t* block_ids, int32_t* block_table, int32_t capacity,
                                cs_runtime_admission* result);

/*
 * The request's prompt is computed: its full blocks join the cache. Their
 * ids go to block_ids (may be NULL) and their number to *num_blocks (may be
 * NULL). The request's num_blocks is always enough capacity; with less, a
 * longer answer fails with CS_ERR_BUFFER_TOO_SMALL and *num_blocks set to
 * the size needed, after the sidecar applied the call.
 */
CS_API int32_t cs_runtime_prefill_done(cs_runtime* rt, int64_t request_id, double time,
                                       int32_t* block_ids, int32_t capacity, int32_t* num_blocks);

/*
 * The request decoded `tokens` more tokens (>= 0); `hashes` are those of the
 * blocks that became full. New block ids go to new_block_ids (may be NULL,
 * else ceil(tokens / block_size) entries, checked before sending), their
 * number to *num_new (may be NULL). Returns 1 when appended, 0 when the
 * device tier cannot hold them now, or a negative status.
 */
CS_API int32_t cs_runtime_decode(cs_runtime* rt, int64_t request_id, int32_t tokens,
                                 const uint64_t* hashes, int32_t hash_count, double time,
                                 int32_t* new_block_ids, int32_t capacity, int32_t* num_new);

/* The request finished: its blocks are unpinned and stay cached. */
CS_API int32_t cs_runtime_release(cs_runtime* rt, int64_t request_id, double time);

/* Between steps: the policies' demotions, evictions, prefetches and pins;
 * their copies join the copy plan. result may be NULL. */
CS_API int32_t cs_runtime_act(cs_runtime* rt, double now, cs_act_result* result);

/*
 * The runtime's prediction for `session` over `horizon` steps (1..256, or 0
 * for the sidecar's default). Returns 1 with *out set, 0 when there is none
 * (*out NULL), or a negative status.
 */
CS_API int32_t cs_runtime_predict(cs_runtime* rt, const char* session, int32_t horizon,
                                  const cs_prediction** out);

/* Sizes of the queued copy plan (either pointer may be NULL). */
CS_API int32_t cs_runtime_pending_copy_plan(const cs_runtime* rt, int32_t* count,
                                            int32_t* num_stages);
/* Moves the queued copies into `plan`, all-or-nothing like
 * cs_bm_take_copy_plan(); run them in order before using the blocks. */
CS_API int32_t cs_runtime_take_copy_plan(cs_runtime* rt, cs_copy_plan* plan);

#ifdef __cplusplus
}
#endif

#endif /* CACHESAGE_H */
