"""What the sidecar answers, as dataclasses."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union


@dataclass(frozen=True)
class AgentRef:
    """Agent identity, the coordinate frameworks and engines share."""

    workload: str
    agent: str


@dataclass(frozen=True)
class CopyPlan:
    """Block copies for the engine's data plane to run, in order.

    Copy i moves (src_tier[i], src_slot[i]) to (dst_tier[i], dst_slot[i]);
    tiers are 1 (device) and 2 (host). Copies of one stage
    [stage_starts[k], stage_starts[k+1]) may run in parallel.
    """

    src_tier: List[int] = field(default_factory=list)
    src_slot: List[int] = field(default_factory=list)
    dst_tier: List[int] = field(default_factory=list)
    dst_slot: List[int] = field(default_factory=list)
    stage_starts: List[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.src_tier)

    @staticmethod
    def from_json(data: Dict[str, List[int]]) -> "CopyPlan":
        return CopyPlan(data["srcTier"], data["srcSlot"], data["dstTier"], data["dstSlot"], data["stageStarts"])

    @staticmethod
    def from_msgpack(parts: Sequence[bytes]) -> "CopyPlan":
        src_tier, src_slot, dst_tier, dst_slot, stages = parts
        return CopyPlan(list(src_tier), int32s(src_slot), list(dst_tier), int32s(dst_slot), int32s(stages))


@dataclass(frozen=True)
class Admission:
    """An admitted request: its cached prefix, host loads and block table."""

    cached_device_tokens: int
    loaded_blocks: int
    block_ids: List[int]
    block_table: List[int]
    copies: CopyPlan = field(default_factory=CopyPlan)


@dataclass(frozen=True)
class Action:
    """One action act() executed: demote/evict/prefetch carry block ids, pin/unpin a key."""

    type: str
    block_ids: Optional[List[int]] = None
    key: Optional[str] = None
    leaf_block_id: Optional[int] = None


@dataclass(frozen=True)
class ActResult:
    actions: List[Action]
    demoted: int
    evicted: int
    prefetched: int
    pinned: int
    unpinned: int
    copies: CopyPlan = field(default_factory=CopyPlan)


@dataclass(frozen=True)
class EventResult:
    """Whether the runtime applied a framework event, or why it ignored it."""

    applied: bool
    ignored: Optional[str] = None


@dataclass(frozen=True)
class ItemError:
    """A batch item the sidecar refused; the items after it still ran."""

    status: int
    message: str


#: One batch item's result: its value (see Batch), None for "no device room", or the refusal.
ItemResult = Union[Any, None, ItemError]


@dataclass(frozen=True)
class BatchReply:
    results: List[ItemResult]
    copies: CopyPlan


def int32s(data: bytes) -> List[int]:
    """Little-endian int32 words of a msgpack bin."""
    return list(struct.unpack(f"<{len(data) // 4}i", data))


def action_from(data: Any) -> Action:
    """An action from its JSON object or its batch array."""
    if isinstance(data, dict):
        return Action(data["type"], data.get("blockIds"), data.get("key"), data.get("leafBlockId"))
    kind = data[0]
    if kind == "pin":
        return Action(kind, key=data[1], leaf_block_id=data[2])
    if kind == "unpin":
        return Action(kind, key=data[1])
    return Action(kind, block_ids=int32s(data[1]))
