"""A vLLM-style KV-event publisher for the subscriber tests.

Binds a PUB socket and a ROUTER replay socket on loopback, prints their
endpoints as one JSON line, waits for "go" on stdin, then publishes a fixed
script of event batches as vLLM's ZmqEventPublisher does: multipart
[topic, 8-byte big-endian seq, msgpack batch], every batch also kept in a
replay buffer. The script mixes the tagged-array and tagged-map event forms
and int (negative, above 2**63) and bytes block hashes. On purpose it
withholds some batches from the PUB socket (they are only in the replay
buffer: a sequence gap), sends one batch that fails the schema and one
message with the wrong frame count. It then prints the ground truth (the
block keys each medium holds, normalised to unsigned 64-bit as the
subscriber does) as one JSON line and keeps serving replays until stdin
closes.

Replies follow vLLM: [client_id, "", topic, seq, payload] per buffered
batch with seq >= start, then [client_id, "", "", END_SEQ, ""].
With --legacy-replay the topic frame is left out, as earlier vLLM did.
"""
import hashlib
import json
import random
import sys
import time

import msgpack
import zmq

TOPIC = b"kv@test"
END_SEQ = (-1).to_bytes(8, "big", signed=True)
MASK = (1 << 64) - 1
BLOCK_SIZE = 16


def key(block_hash):
    if isinstance(block_hash, bytes):
        return int.from_bytes(block_hash[-8:], "big")
    return block_hash & MASK


def stored(hashes, parent, medium, as_map):
    tokens = list(range(len(hashes) * BLOCK_SIZE))
    if as_map:
        event = {"type": "BlockStored", "block_hashes": hashes, "parent_block_hash": parent,
                 "token_ids": tokens, "block_size": BLOCK_SIZE, "lora_id": None}
        if medium is not None:
            event["medium"] = medium
        return event
    event = ["BlockStored", hashes, parent, tokens, BLOCK_SIZE, None]
    # msgspec omits trailing defaults, so an event without a medium is one field shorter.
    return event + [medium] if medium is not None else event


def removed(hashes, medium, as_map):
    if as_map:
        return {"type": "BlockRemoved", "block_hashes": hashes, "medium": medium}
    return ["BlockRemoved", hashes, medium]


def script():
    """The batches to publish and the ground truth they leave."""
    rng = random.Random(7)
    truth = {}
    batches = []
    live = []  # (hash, medium) currently held

    def new_hash(i):
        kind = i % 4
        if kind == 0:
            return rng.randrange(0, 1 << 31)
        if kind == 1:
            return -rng.randrange(1, 1 << 63)
        if kind == 2:
            return rng.randrange(1 << 63, 1 << 64)
        return hashlib.sha256(str(i).encode()).digest()

    counter = 0
    for b in range(40):
        events = []
        as_map = b % 2 == 1
        if b == 25:
            events.append(["AllBlocksCleared"] if not as_map else {"type": "AllBlocksCleared"})
            truth.clear()
            live.clear()
        medium = [None, "GPU", "CPU"][b % 3]
        name = medium or "GPU"
        hashes = []
        for _ in range(3):
            hashes.append(new_hash(counter))
            counter += 1
        events.append(stored(hashes, None, medium, as_map))
        for h in hashes:
            truth.setdefault(name, set()).add(key(h))
            live.append((h, name))
        if b % 4 == 3 and live:
            h, m = live.pop(rng.randrange(len(live)))
            events.append(removed([h], m, not as_map))
            truth[m].discard(key(h))
        batch = [time.time(), events]
        if b % 5 == 0:
            batch.append(0)  # data_parallel_rank
        batches.append(msgpack.packb(batch, use_bin_type=True))
    return batches, {m: [str(k) for k in sorted(keys)] for m, keys in truth.items() if keys}


def main():
    legacy = "--legacy-replay" in sys.argv
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    replay = ctx.socket(zmq.ROUTER)
    replay.setsockopt(zmq.LINGER, 0)
    replay.bind("tcp://127.0.0.1:*")
    print(json.dumps({"endpoint": pub.getsockopt_string(zmq.LAST_ENDPOINT),
                      "replay": replay.getsockopt_string(zmq.LAST_ENDPOINT)}), flush=True)

    buffer = []

    def serve_replay(timeout_ms):
        if not replay.poll(timeout_ms):
            return
        frame = replay.recv_multipart()
        if len(frame) != 3:
            return
        client_id, _, start_bytes = frame
        start = int.from_bytes(start_bytes, "big")
        for seq, payload in buffer:
            if seq >= start:
                head = (client_id, b"") if legacy else (client_id, b"", TOPIC)
                replay.send_multipart(head + (seq.to_bytes(8, "big"), payload))
        replay.send_multipart((client_id, b"", END_SEQ, b"") if legacy else (client_id, b"", b"", END_SEQ, b""))

    if sys.stdin.readline().strip() != "go":
        return
    batches, truth = script()
    # Sequence numbers: the script's batches, with one schema-breaking batch inserted after the 10th.
    payloads = batches[:10] + [msgpack.packb(["not a timestamp", []], use_bin_type=True)] + batches[10:]
    withheld = {14, 15, 16, 30}
    for seq, payload in enumerate(payloads):
        buffer.append((seq, payload))
        if seq not in withheld:
            pub.send_multipart((TOPIC, seq.to_bytes(8, "big"), payload))
        if seq == 5:
            pub.send_multipart((TOPIC, seq.to_bytes(8, "big")))  # two frames: malformed
        serve_replay(3)
    print(json.dumps({"lastSequence": len(payloads) - 1, "media": truth}), flush=True)

    poller = zmq.Poller()
    poller.register(replay, zmq.POLLIN)
    poller.register(sys.stdin, zmq.POLLIN)
    while True:
        ready = dict(poller.poll())
        if replay in ready:
            serve_replay(0)
        if sys.stdin.fileno() in ready or sys.stdin in ready:
            line = sys.stdin.readline()
            if not line or line.strip() == "quit":
                return


if __name__ == "__main__":
    main()
