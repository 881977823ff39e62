#!/usr/bin/env python3
"""ctypes binding for libcachesage (native/capi/cachesage.h), plus a self-test.

Usage:
    python3 cachesage_ctypes.py [path/to/libcachesage.so]

The library path comes from argv[1], else $CACHESAGE_LIB. Run as a script it
checks the binding end to end and prints "ctypes ok". Standard library only.

The structures below mirror cachesage.h field for field; cs_abi_version() is
checked on load so a mismatched library fails loudly instead of corrupting
memory.
"""

import ctypes
import os
import sys
from ctypes import POINTER, Structure, c_char_p, c_double, c_float, c_int32, c_int64
from ctypes import c_size_t, c_uint8, c_uint32, c_uint64, c_void_p

ABI_VERSION = 2

OK = 0
ERR_INVALID_ARGUMENT = -1
ERR_BUFFER_TOO_SMALL = -2
ERR_OUT_OF_MEMORY = -3
ERR_INVARIANT = -4
ERR_INTERNAL = -5

TIER_FREE, TIER_DEVICE, TIER_HOST = 0, 1, 2
EVENT_STORED, EVENT_REMOVED, EVENT_DEMOTED, EVENT_LOADED = 1, 2, 3, 4


class Config(Structure):
    _fields_ = [
        ("bytes_per_block", c_int64),
        ("block_size", c_int32),
        ("device_blocks", c_int32),
        ("host_blocks", c_int32),
        ("max_classes", c_int32),
    ]


class RequestTags(Structure):
    _fields_ = [("workload", c_int32), ("agent", c_int32), ("session", c_int32)]


class LookupResult(Structure):
    _fields_ = [("device_blocks", c_int32), ("host_blocks", c_int32), ("num_ids", c_int32)]


class AdmitResult(Structure):
    _fields_ = [
        ("cached_device_tokens", c_int32),
        ("loaded_blocks", c_int32),
        ("num_blocks", c_int32),
    ]


class CopyPlan(Structure):
    _fields_ = [
        ("src_tier", POINTER(c_uint8)),
        ("src_slot", POINTER(c_int32)),
        ("dst_tier", POINTER(c_uint8)),
        ("dst_slot", POINTER(c_int32)),
        ("capacity", c_int32),
        ("stage_starts", POINTER(c_int32)),
        ("stage_capacity", c_int32),
        ("count", c_int32),
        ("num_stages", c_int32),
    ]


class Events(Structure):
    _fields_ = [
        ("kind", POINTER(c_uint8)),
        ("block", POINTER(c_int32)),
        ("hash", POINTER(c_uint64)),
        ("tier", POINTER(c_uint8)),
        ("capacity", c_int32),
        ("count", c_int32),
    ]


class Metadata(Structure):
    _fields_ = [
        ("num_blocks", c_int32),
        ("tier", POINTER(c_uint8)),
        ("committed", POINTER(c_uint8)),
        ("slot", POINTER(c_int32)),
        ("ref_count", POINTER(c_int32)),
        ("last_access", POINTER(c_double)),
        ("access_count", POINTER(c_uint32)),
        ("workload", POINTER(c_int32)),
        ("agent_mask", POINTER(c_uint64)),
        ("session", POINTER(c_int32)),
        ("depth", POINTER(c_int32)),
        ("cached_children", POINTER(c_int32)),
        ("device_children", POINTER(c_int32)),
        ("hash", POINTER(c_uint64)),
        ("parent", POINTER(c_int32)),
        ("score", POINTER(c_float)),
        ("score_class", POINTER(c_int32)),
        ("num_classes", c_int32),
        ("class_score", POINTER(c_float)),
    ]


_h = c_void_p  # opaque handles
_i32p, _u64p, _u8p = POINTER(c_int32), POINTER(c_uint64), POINTER(c_uint8)

# name: (restype, argtypes)
_SIGNATURES = {
    "cs_abi_version": (c_int32, []),
    "cs_status_string": (c_char_p, [c_int32]),
    "cs_hash_token_blocks": (c_int32, [POINTER(c_uint32), c_int64, c_int32, c_uint64, _u64p,
                                       c_int32, _i32p, c_char_p, c_size_t]),
    "cs_bm_create": (_h, [POINTER(Config), c_char_p, c_size_t]),
    "cs_bm_destroy": (None, [_h]),
    "cs_bm_last_error": (c_char_p, [_h]),
    "cs_bm_config": (c_int32, [_h, POINTER(Config)]),
    "cs_bm_num_block_ids": (c_int32, [_h]),
    "cs_bm_clock": (c_int32, [_h, POINTER(c_double)]),
    "cs_bm_metadata": (c_int32, [_h, POINTER(Metadata)]),
    "cs_bm_lookup": (c_int32, [_h, _u64p, c_int32, _i32p, c_int32, POINTER(LookupResult)]),
    "cs_bm_admit": (c_int32, [_h, c_int64, _u64p, c_int32, c_int32, POINTER(RequestTags),
                              _i32p, _i32p, c_int32, POINTER(AdmitResult)]),
    "cs_bm_append": (c_int32, [_h, c_int64, c_int32, _u64p, c_int32, _i32p, c_int32, _i32p]),
    "cs_bm_commit": (c_int32, [_h, c_int64, c_int32, _i32p, _i32p, c_int32, _i32p]),
    "cs_bm_release": (c_int32, [_h, c_int64]),
    "cs_bm_has_request": (c_int32, [_h, c_int64]),
    "cs_bm_num_requests": (c_int32, [_h]),
    "cs_bm_request_blocks": (c_int32, [_h, c_int64, _i32p, _i32p, c_int32, _i32p]),
    "cs_bm_set_scores": (c_int32, [_h, _i32p, POINTER(c_float), c_int32]),
    "cs_bm_set_all_scores": (c_int32, [_h, POINTER(c_float), c_int32]),
    "cs_bm_evict": (c_int32, [_h, c_int32, c_int32]),
    "cs_bm_demote": (c_int32, [_h, _i32p, c_int32]),
    "cs_bm_drop": (c_int32, [_h, _i32p, c_int32]),
    "cs_bm_load": (c_int32, [_h, _i32p, c_int32]),
    "cs_bm_used_blocks": (c_int32, [_h, c_int32]),
    "cs_bm_evictable_blocks": (c_int32, [_h, c_int32]),
    "cs_bm_pinned_device_blocks": (c_int32, [_h]),
    "cs_bm_pending_copy_plan": (c_int32, [_h, _i32p, _i32p]),
    "cs_bm_pending_events": (c_int32, [_h, _i32p]),
    "cs_bm_take_copy_plan": (c_int32, [_h, POINTER(CopyPlan)]),
    "cs_bm_take_events": (c_int32, [_h, POINTER(Events)]),
    "cs_bm_set_record_events": (c_int32, [_h, c_int32]),
    "cs_bm_check_invariants": (c_int32, [_h, c_char_p, c_size_t]),
    "cs_dp_create": (_h, [POINTER(Config), c_char_p, c_size_t]),
    "cs_dp_destroy": (None, [_h]),
    "cs_dp_last_error": (c_char_p, [_h]),
    "cs_dp_bytes_per_block": (c_int32, [_h, POINTER(c_int64)]),
    "cs_dp_blocks": (c_int32, [_h, c_int32]),
    "cs_dp_execute": (c_int32, [_h, _u8p, _i32p, _u8p, _i32p, c_int32]),
    "cs_dp_execute_plan": (c_int32, [_h, POINTER(CopyPlan)]),
    "cs_dp_write_block": (c_int32, [_h, c_int32, c_int32, c_int64, c_void_p, c_int64]),
    "cs_dp_read_block": (c_int32, [_h, c_int32, c_int32, c_int64, c_void_p, c_int64]),
    "cs_dp_block_pointer": (c_int32, [_h, c_int32, c_int32, POINTER(_u8p)]),
}


class CacheSageError(Exception):
    def __init__(self, status, message):
        super().__init__(f"{message} ({status})")
        self.status = status
        self.message = message


def load(path):
    """Loads libcachesage and declares every signature."""
    lib = ctypes.CDLL(path)
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    version = lib.cs_abi_version()
    if version != ABI_VERSION:
        raise RuntimeError(f"{path}: C ABI version {version}, this binding expects {ABI_VERSION}")
    return lib


def _array(ctype, values):
    return (ctype * max(len(values), 1))(*values)


class BlockManager:
    """A thin object over a cs_block_manager handle."""

    def __init__(self, lib, block_size=16, device_blocks=1, host_blocks=0, bytes_per_block=0):
        self.lib = lib
        self.config = Config(bytes_per_block, block_size, device_blocks, host_blocks)
        err = ctypes.create_string_buffer(512)
        self.handle = lib.cs_bm_create(ctypes.byref(self.config), err, len(err))
        if not self.handle:
            raise CacheSageError(ERR_INVALID_ARGUMENT, err.value.decode())

    def close(self):
        if self.handle:
            self.lib.cs_bm_destroy(self.handle)
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def last_error(self):
        return self.lib.cs_bm_last_error(self.handle).decode()

    def _check(self, status):
        if status < 0:
            raise CacheSageError(status, self.last_error())
        return status

    def hash_tokens(self, tokens, parent=0):
        blocks = len(tokens) // self.config.block_size
        out = (c_uint64 * max(blocks, 1))()
        written = c_int32(-1)
        err = ctypes.create_string_buffer(512)
        status = self.lib.cs_hash_token_blocks(_array(c_uint32, tokens), len(tokens),
                                               self.config.block_size, parent, out, blocks,
                                               ctypes.byref(written), err, len(err))
        if status != OK:
            raise CacheSageError(status, err.value.decode())
        return list(out[: written.value])

    def lookup(self, hashes):
        ids = (c_int32 * max(len(hashes), 1))()
        result = LookupResult()
        self._check(self.lib.cs_bm_lookup(self.handle, _array(c_uint64, hashes), len(hashes), ids,
                                          len(hashes), ctypes.byref(result)))
        return result.device_blocks, result.host_blocks, list(ids[: result.num_ids])

    def admit(self, request_id, hashes, num_tokens, tags=None):
        """(cached_device_tokens, loaded_blocks, block_ids, block_table), or None when the
        device tier cannot hold the request now."""
        capacity = -(-num_tokens // self.config.block_size) if num_tokens > 0 else 0
        ids = (c_int32 * max(capacity, 1))()
        table = (c_int32 * max(capacity, 1))()
        result = AdmitResult()
        tag_ptr = ctypes.byref(RequestTags(*tags)) if tags is not None else None
        status = self._check(self.lib.cs_bm_admit(
            self.handle, request_id, _array(c_uint64, hashes), len(hashes), num_tokens, tag_ptr,
            ids, table, capacity, ctypes.byref(result)))
        if status == 0:
            return None
        n = result.num_blocks
        return result.cached_device_tokens, result.loaded_blocks, list(ids[:n]), list(table[:n])

    def commit(self, request_id, num_blocks):
        """The request's (block_ids, block_table) after the commit."""
        count = c_int32(0)
        self._check(self.lib.cs_bm_request_blocks(self.handle, request_id, None, None, 0,
                                                  ctypes.byref(count)))
        ids = (c_int32 * max(count.value, 1))()
        table = (c_int32 * max(count.value, 1))()
        self._check(self.lib.cs_bm_commit(self.handle, request_id, num_blocks, ids, table,
                                          count.value, ctypes.byref(count)))
        return list(ids[: count.value]), list(table[: count.value])

    def release(self, request_id):
        self._check(self.lib.cs_bm_release(self.handle, request_id))

    def used_blocks(self, tier):
        return self._check(self.lib.cs_bm_used_blocks(self.handle, tier))

    def take_events(self):
        count = c_int32(0)
        self._check(self.lib.cs_bm_pending_events(self.handle, ctypes.byref(count)))
        n = max(count.value, 1)
        kind, block = (c_uint8 * n)(), (c_int32 * n)()
        hashes, tier = (c_uint64 * n)(), (c_uint8 * n)()
        events = Events(kind, block, hashes, tier, n, 0)
        self._check(self.lib.cs_bm_take_events(self.handle, ctypes.byref(events)))
        return [(kind[i], block[i], hashes[i], tier[i]) for i in range(events.count)]

    def set_record_events(self, on):
        """Whether block events are queued from now on; off drops the queued ones."""
        self._check(self.lib.cs_bm_set_record_events(self.handle, 1 if on else 0))

    def check_invariants(self):
        msg = ctypes.create_string_buffer(512)
        if self.lib.cs_bm_check_invariants(self.handle, msg, len(msg)) != OK:
            raise CacheSageError(ERR_INVARIANT, msg.value.decode())


def self_test(lib):
    def expect(cond, what):
        if not cond:
            raise AssertionError(what)

    err = ctypes.create_string_buffer(256)
    bad = Config(0, 16, 0, 0)
    expect(not lib.cs_bm_create(ctypes.byref(bad), err, len(err)), "bad config must fail")
    expect(b"deviceBlocks must be >= 1" in err.value, f"bad config message: {err.value!r}")
    try:
        BlockManager(lib, block_size=0, device_blocks=4)
        expect(False, "block_size 0 must raise")
    except CacheSageError as e:
        expect("blockSize must be in" in e.message, e.message)

    with BlockManager(lib, block_size=4, device_blocks=8, host_blocks=4) as bm:
        prompt_a = list(range(1, 13))  # 3 full blocks
        prompt_b = list(range(1, 9)) + [500, 501, 502, 503, 504]  # shares 2 blocks, 13 tokens
        ha = bm.hash_tokens(prompt_a)
        hb = bm.hash_tokens(prompt_b)
        expect(len(ha) == 3 and len(hb) == 3, "hash counts")
        expect(ha[:2] == hb[:2] and ha[2] != hb[2], "shared prefix hashes")
        expect(bm.hash_tokens(prompt_a[4:], parent=ha[0]) == ha[1:], "hash chaining")

        admitted = bm.admit(1, ha, len(prompt_a), tags=(0, 3, 7))
        expect(admitted == (0, 0, [0, 1, 2], [0, 1, 2]), f"admit 1: {admitted}")
        expect(bm.commit(1, 3) == ([0, 1, 2], [0, 1, 2]), "commit 1")
        expect(bm.lookup(hb) == (2, 0, [0, 1]), f"lookup: {bm.lookup(hb)}")

        admitted = bm.admit(2, hb, len(prompt_b))
        expect(admitted == (8, 0, [0, 1, 3, 4], [0, 1, 3, 4]), f"admit 2: {admitted}")
        expect(bm.commit(2, 3) == ([0, 1, 3, 4], [0, 1, 3, 4]), "commit 2")
        expect(bm.used_blocks(TIER_DEVICE) == 5, "used blocks")
        events = bm.take_events()
        expect([(k, b) for k, b, _, _ in events] ==
               [(EVENT_STORED, 0), (EVENT_STORED, 1), (EVENT_STORED, 2), (EVENT_STORED, 3)],
               f"events: {events}")
        expect(events[3][2] == hb[2] and events[3][3] == TIER_DEVICE, "event hash and tier")

        meta = Metadata()
        expect(lib.cs_bm_metadata(bm.handle, ctypes.byref(meta)) == OK, "metadata")
        expect(meta.num_blocks == 12, "metadata size")
        expect(meta.ref_count[0] == 2 and meta.ref_count[2] == 1 and meta.ref_count[3] == 1,
               "ref counts")
        expect(meta.parent[3] == 1 and meta.hash[3] == hb[2], "tree links")
        expect(meta.agent_mask[0] == 1 << 3, "agent mask")
        bm.check_invariants()

        # Error paths return a status and a message; nothing raises through C.
        status = lib.cs_bm_release(bm.handle, 99)
        expect(status == ERR_INVALID_ARGUMENT, f"release unknown: {status}")
        expected = "release: unknown request 99 (never admitted or already released)"
        expect(bm.last_error() == expected, f"message: {bm.last_error()!r}")
        expect(lib.cs_status_string(status) == b"CS_ERR_INVALID_ARGUMENT", "status string")
        try:
            bm.admit(1, ha, len(prompt_a))
            expect(False, "duplicate admit must raise")
        except CacheSageError as e:
            expect(e.status == ERR_INVALID_ARGUMENT and "already admitted" in e.message, e.message)
        ids = (c_int32 * 1)()
        result = AdmitResult()
        status = lib.cs_bm_admit(bm.handle, 5, _array(c_uint64, ha), 3, 12, None, ids, None, 1,
                                 ctypes.byref(result))
        expect(status == ERR_BUFFER_TOO_SMALL and result.num_blocks == 3,
               f"small buffer: {status} {result.num_blocks}")
        expect("needs 3 block entries" in bm.last_error(), bm.last_error())

        bm.release(1)
        bm.release(2)
        expect(bm.used_blocks(TIER_DEVICE) == 4, "uncommitted block 4 freed, the rest cached")
        bm.check_invariants()

        # An engine that reads no events turns them off: nothing queues.
        expect(lib.cs_bm_set_record_events(bm.handle, 2) == ERR_INVALID_ARGUMENT, "record events 2")
        bm.set_record_events(False)
        hc = bm.hash_tokens(list(range(100, 108)))
        bm.admit(3, hc, 8)
        bm.commit(3, 2)
        expect(bm.take_events() == [], "no events while off")
        bm.set_record_events(True)
        bm.release(3)
        bm.check_invariants()
    print("ctypes ok")


def main(argv):
    path = argv[1] if len(argv) > 1 else os.environ.get("CACHESAGE_LIB")
    if not path:
        print("usage: cachesage_ctypes.py path/to/libcachesage.so (or set CACHESAGE_LIB)",
              file=sys.stderr)
        return 2
    try:
        self_test(load(path))
    except (AssertionError, CacheSageError, OSError, RuntimeError) as e:
        print(f"ctypes FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
