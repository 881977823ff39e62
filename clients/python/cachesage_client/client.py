"""A client of `cachesage serve`, standard library only.

The simple verbs speak JSON over one keep-alive HTTP connection; `batch`
sends many framework and engine events in one msgpack request, the hot
path of an engine loop (docs/serving.md, "The batch schema").
"""
from __future__ import annotations

import http.client
import json
import struct
import urllib.parse
from typing import Any, Dict, List, Optional, Sequence

from .msgpack import packb, unpackb
from .types import (
    ActResult,
    Admission,
    AgentRef,
    BatchReply,
    CopyPlan,
    EventResult,
    ItemError,
    ItemResult,
    action_from,
    int32s,
)

__all__ = ["Client", "Batch", "CachesageError", "OP"]

#: Batch op codes.
OP = {
    "session.start": 1,
    "step.start": 2,
    "step.end": 3,
    "tool.start": 4,
    "tool.end": 5,
    "session.end": 6,
    "admit": 16,
    "prefill-done": 17,
    "decode": 18,
    "release": 19,
    "act": 20,
}


class CachesageError(Exception):
    """A refusal from the sidecar: its HTTP status and the message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def hashes_bin(hashes: Sequence[int]) -> bytes:
    """Block hashes as the batch's bin of 8-byte little-endian words."""
    return struct.pack(f"<{len(hashes)}Q", *hashes)


class Batch:
    """Items for one /v1/batch request, built in order.

    Results come back in the same order: admit -> Admission or None (no room),
    prefill_done -> block ids, decode -> block ids or None, release -> True,
    act -> ActResult, framework events -> EventResult; a refused item -> ItemError.
    """

    def __init__(self) -> None:
        self.items: List[list] = []

    def __len__(self) -> int:
        return len(self.items)

    def event(self, type: str, time: float, session: str, workload: Optional[str] = None,
              agent: Optional[AgentRef] = None, tool: Optional[str] = None) -> "Batch":
        item: list = [OP[type], float(time), session]
        if type == "session.start":
            item.append(workload)
        elif type != "session.end":
            assert agent is not None, f"{type} needs an agent"
            item += [agent.workload, agent.agent]
            if type.startswith("tool."):
                item.append(tool)
        self.items.append(item)
        return self

    def admit(self, request_id: int, hashes: Sequence[int], num_tokens: int, session: Optional[str] = None,
              agent: Optional[AgentRef] = None, time: Optional[float] = None) -> "Batch":
        self.items.append([OP["admit"], request_id, num_tokens, hashes_bin(hashes), session,
                           agent.workload if agent else None, agent.agent if agent else None,
                           None if time is None else float(time)])
        return self

    def prefill_done(self, request_id: int, time: Optional[float] = None) -> "Batch":
        self.items.append([OP["prefill-done"], request_id, None if time is None else float(time)])
        return self

    def decode(self, request_id: int, tokens: int, hashes: Optional[Sequence[int]] = None,
               time: Optional[float] = None) -> "Batch":
        self.items.append([OP["decode"], request_id, tokens, None if hashes is None else hashes_bin(hashes),
                           None if time is None else float(time)])
        return self

    def release(self, request_id: int, time: Optional[float] = None) -> "Batch":
        self.items.append([OP["release"], request_id, None if time is None else float(time)])
        return self

    def act(self, now: Optional[float] = None) -> "Batch":
        self.items.append([OP["act"], None if now is None else float(now)])
        return self


def _item_result(op: int, raw: list) -> ItemResult:
    if raw[0] == 2:
        return ItemError(raw[1], raw[2])
    if raw[0] == 1:
        return None
    if op == OP["admit"]:
        return Admission(raw[1], raw[2], int32s(raw[3]), int32s(raw[4]))
    if op in (OP["prefill-done"], OP["decode"]):
        return int32s(raw[1])
    if op == OP["release"]:
        return True
    if op == OP["act"]:
        return ActResult([action_from(a) for a in raw[6]], raw[1], raw[2], raw[3], raw[4], raw[5])
    return EventResult(raw[1] is None, raw[1])


class Client:
    """One sidecar, one keep-alive connection (not thread-safe: one Client per thread)."""

    def __init__(self, url: str = "http://127.0.0.1:8470", token: Optional[str] = None, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"url must be http://HOST:PORT, got {url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or 80
        self.token = token
        self.timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ transport

    def _request(self, method: str, path: str, body: Optional[bytes], content_type: str) -> tuple:
        headers = {"content-type": content_type} if body is not None else {}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.getheader("content-type", ""), response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection: retry once on a new one.
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = None if body is None else json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        status, content_type, payload = self._request(method, path, data, "application/json")
        if status >= 400:
            message = json.loads(payload).get("message", "") if "json" in content_type else payload.decode(errors="replace")
            raise CachesageError(status, message)
        if "json" not in content_type:
            return payload.decode()
        return json.loads(payload)

    # ------------------------------------------------------------ framework events

    def event(self, type: str, time: float, session: str, workload: Optional[str] = None,
              agent: Optional[AgentRef] = None, tool: Optional[str] = None) -> EventResult:
        body: Dict[str, Any] = {"type": type, "time": time, "session": session, "workload": workload, "tool": tool}
        if agent is not None:
            body["agent"] = {"workload": agent.workload, "agent": agent.agent}
        reply = self._json("POST", "/v1/events", body)
        return EventResult(reply["applied"], reply.get("ignored"))

    def session_start(self, session: str, workload: str, time: float) -> EventResult:
        return self.event("session.start", time, session, workload=workload)

    def step_start(self, session: str, agent: AgentRef, time: float) -> EventResult:
        return self.event("step.start", time, session, agent=agent)

    def step_end(self, session: str, agent: AgentRef, time: float) -> EventResult:
        return self.event("step.end", time, session, agent=agent)

    def tool_start(self, session: str, agent: AgentRef, tool: str, time: float) -> EventResult:
        return self.event("tool.start", time, session, agent=agent, tool=tool)

    def tool_end(self, session: str, agent: AgentRef, tool: str, time: float) -> EventResult:
        return self.event("tool.end", time, session, agent=agent, tool=tool)

    def session_end(self, session: str, time: float) -> EventResult:
        return self.event("session.end", time, session)

    # ------------------------------------------------------------ engine verbs

    def admit(self, request_id: int, hashes: Sequence[int], num_tokens: int, session: Optional[str] = None,
              agent: Optional[AgentRef] = None, time: Optional[float] = None) -> Optional[Admission]:
        """The request's cached prefix and block table; None when the device tier cannot hold it now."""
        body: Dict[str, Any] = {"requestId": request_id, "hashes": [str(h) for h in hashes], "numTokens": num_tokens,
                                "session": session, "time": time}
        if agent is not None:
            body["agent"] = {"workload": agent.workload, "agent": agent.agent}
        reply = self._json("POST", "/v1/admit", body)
        if not reply["admitted"]:
            return None
        return Admission(reply["cachedDeviceTokens"], reply["loadedBlocks"], reply["blockIds"], reply["blockTable"],
                         CopyPlan.from_json(reply["copies"]))

    def prefill_done(self, request_id: int, time: Optional[float] = None) -> List[int]:
        return self._json("POST", "/v1/prefill-done", {"requestId": request_id, "time": time})["blockIds"]

    def decode(self, request_id: int, tokens: int, hashes: Optional[Sequence[int]] = None,
               time: Optional[float] = None) -> Optional[List[int]]:
        body: Dict[str, Any] = {"requestId": request_id, "tokens": tokens, "time": time}
        if hashes is not None:
            body["hashes"] = [str(h) for h in hashes]
        reply = self._json("POST", "/v1/decode", body)
        return reply["blockIds"] if reply["appended"] else None

    def release(self, request_id: int, time: Optional[float] = None) -> None:
        self._json("POST", "/v1/release", {"requestId": request_id, "time": time})

    def act(self, now: Optional[float] = None) -> ActResult:
        r = self._json("POST", "/v1/act", {"now": now})
        return ActResult([action_from(a) for a in r["actions"]], r["demoted"], r["evicted"], r["prefetched"],
                         r["pinned"], r["unpinned"], CopyPlan.from_json(r["copies"]))

    # ------------------------------------------------------------ introspection

    def predict(self, session: str, horizon: Optional[int] = None) -> Optional[Dict[str, Any]]:
        return self._json("POST", "/v1/predict", {"session": session, "horizon": horizon})["prediction"]

    def explain(self, block_id: int) -> Dict[str, Any]:
        return self._json("GET", f"/v1/explain/{int(block_id)}")

    def info(self) -> Dict[str, Any]:
        return self._json("GET", "/v1/info")

    def metrics(self) -> str:
        return self._json("GET", "/metrics")

    def health(self) -> bool:
        return bool(self._json("GET", "/healthz")["ok"])

    # ------------------------------------------------------------ batch

    def batch(self, batch: Batch) -> BatchReply:
        """Runs the batch's items in order; one result per item."""
        status, content_type, payload = self._request("POST", "/v1/batch", packb(batch.items), "application/msgpack")
        if status >= 400:
            message = json.loads(payload).get("message", "") if "json" in content_type else payload.decode(errors="replace")
            raise CachesageError(status, message)
        reply = unpackb(payload)
        results = [_item_result(item[0], raw) for item, raw in zip(batch.items, reply["results"])]
        return BatchReply(results, CopyPlan.from_msgpack(reply["copies"]))
