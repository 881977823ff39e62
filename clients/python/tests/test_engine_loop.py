"""A small engine loop against a running sidecar.

Needs CACHESAGE_URL (and CACHESAGE_TOKEN when the sidecar has tokens);
skipped otherwise. With CACHESAGE_LOG set, writes every call it made and
what the sidecar answered, as batch items and results, for the caller to
replay on an in-process runtime (test/serve/python_client.test.ts).
"""
import hashlib
import json
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cachesage_client import OP, AgentRef, Batch, CachesageError, Client, ItemError  # noqa: E402
from cachesage_client.types import ActResult, Admission, EventResult  # noqa: E402

URL = os.environ.get("CACHESAGE_URL")
TOKEN = os.environ.get("CACHESAGE_TOKEN")
LOG = os.environ.get("CACHESAGE_LOG")
BLOCK_SIZE = int(os.environ.get("CACHESAGE_BLOCK_SIZE", "4"))


def chain(pieces):
    """Hashes of a prompt made of named pieces, each block's hash covering its whole prefix."""
    out, parent = [], b""
    for name, blocks in pieces:
        for b in range(blocks):
            parent = hashlib.blake2b(parent + f"{name}/{b}".encode(), digest_size=8).digest()
            out.append(int.from_bytes(parent, "little"))
    return out


def plain(op, result):
    """A result in the log's form: the batch's result arrays with block ids as lists."""
    if isinstance(result, ItemError):
        return [2, result.status, result.message]
    if result is None:
        return [1]
    if op == OP["admit"]:
        return [0, result.cached_device_tokens, result.loaded_blocks, result.block_ids, result.block_table]
    if op in (OP["prefill-done"], OP["decode"]):
        return [0, result]
    if op == OP["release"]:
        return [0]
    if op == OP["act"]:
        actions = [[a.type, a.key, a.leaf_block_id] if a.type == "pin" else [a.type, a.key] if a.type == "unpin"
                   else [a.type, a.block_ids] for a in result.actions]
        return [0, result.demoted, result.evicted, result.prefetched, result.pinned, result.unpinned, actions]
    return [0, result.ignored]


@unittest.skipUnless(URL, "CACHESAGE_URL is not set: no sidecar to talk to")
class EngineLoopTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = Client(URL, TOKEN)
        self.log = []

    def tearDown(self) -> None:
        self.client.close()

    def record(self, item, result):
        logged = [h if not isinstance(h, list) else [str(x) for x in h] for h in item]
        self.log.append({"item": logged, "result": plain(item[0], result)})

    def test_engine_loop(self) -> None:
        """Sessions of two agents over JSON verbs and batches alternately, act() between steps."""
        c = self.client
        rng = random.Random(11)
        t = 0.0
        request_id = 100
        sessions = [("py-s%d" % i, "pyflow") for i in range(4)]
        history = {s: [] for s, _ in sessions}
        for s, w in sessions:
            t += 0.5
            self.record([OP["session.start"], t, s, w], c.session_start(s, w, t))
        for round_ in range(5):
            for s, w in sessions:
                agent = AgentRef(w, rng.choice(["writer", "critic"]))
                history[s].append(("%s/turn%d" % (s, round_), rng.randrange(1, 3)))
                pieces = [("system/" + w, 2)] + history[s]
                hashes = chain(pieces)
                num_tokens = len(hashes) * BLOCK_SIZE + rng.randrange(BLOCK_SIZE)
                reply = chain(pieces + [("%s/reply%d" % (s, round_), 1)])[len(hashes):]
                request_id += 1
                rid = request_id
                if round_ % 2 == 0:
                    t += 0.25
                    self.record([OP["step.start"], t, s, w, agent.agent], c.step_start(s, agent, t))
                    t += 0.01
                    admission = c.admit(rid, hashes, num_tokens, s, agent, t)
                    self.record([OP["admit"], rid, num_tokens, hashes, s, w, agent.agent, t], admission)
                    self.assertIsInstance(admission, Admission)
                    t += 0.01
                    self.record([OP["prefill-done"], rid, t], c.prefill_done(rid, t))
                    t += 0.01
                    self.record([OP["decode"], rid, BLOCK_SIZE, reply, t], c.decode(rid, BLOCK_SIZE, reply, t))
                    t += 0.01
                    c.release(rid, t)
                    self.record([OP["release"], rid, t], True)
                    t += 0.01
                    self.record([OP["step.end"], t, s, w, agent.agent], c.step_end(s, agent, t))
                    t += 0.01
                    self.record([OP["act"], t], c.act(t))
                else:
                    batch, items = Batch(), []
                    t += 0.25
                    batch.event("step.start", t, s, agent=agent)
                    items.append([OP["step.start"], t, s, w, agent.agent])
                    t += 0.01
                    batch.admit(rid, hashes, num_tokens, s, agent, t)
                    items.append([OP["admit"], rid, num_tokens, hashes, s, w, agent.agent, t])
                    t += 0.01
                    batch.prefill_done(rid, t)
                    items.append([OP["prefill-done"], rid, t])
                    t += 0.01
                    batch.decode(rid, BLOCK_SIZE, reply, t)
                    items.append([OP["decode"], rid, BLOCK_SIZE, reply, t])
                    t += 0.01
                    batch.release(rid, t)
                    items.append([OP["release"], rid, t])
                    t += 0.01
                    batch.event("step.end", t, s, agent=agent)
                    items.append([OP["step.end"], t, s, w, agent.agent])
                    t += 0.01
                    batch.act(t)
                    items.append([OP["act"], t])
                    answer = c.batch(batch)
                    self.assertEqual(len(answer.results), len(items))
                    for item, result in zip(items, answer.results):
                        self.assertNotIsInstance(result, ItemError, msg=str(result))
                        self.record(item, result)
                    self.assertIsInstance(answer.results[-1], ActResult)
        t += 0.1
        self.record([OP["session.end"], t, sessions[0][0]], c.session_end(sessions[0][0], t))
        ignored = c.session_end("py-never-started", t)
        self.assertEqual(ignored, EventResult(False, ignored.ignored))
        self.assertIsNotNone(ignored.ignored)
        prediction = c.predict(sessions[1][0])
        self.assertIsNotNone(prediction)
        self.assertEqual(prediction["workload"], "pyflow")
        info = c.info()
        self.assertEqual(info["requests"], 0)
        if LOG:
            with open(LOG, "w") as f:
                json.dump(self.log, f)

    def test_refusals_name_the_field(self) -> None:
        with self.assertRaises(CachesageError) as caught:
            self.client.admit(1, [1, 2], 0)
        self.assertEqual(caught.exception.status, 400)
        self.assertIn("body.numTokens", caught.exception.message)
        with self.assertRaises(CachesageError) as caught:
            self.client.release(987654321)
        self.assertEqual(caught.exception.status, 404)
        answer = self.client.batch(Batch().release(987654321).act())
        self.assertIsInstance(answer.results[0], ItemError)
        self.assertEqual(answer.results[0].status, 404)
        self.assertIsInstance(answer.results[1], ActResult)


if __name__ == "__main__":
    unittest.main()
