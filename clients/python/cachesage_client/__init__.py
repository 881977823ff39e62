"""A standard-library client of the cachesage sidecar (`cachesage serve`)."""
from .client import OP, Batch, CachesageError, Client, hashes_bin
from .msgpack import MsgpackError, packb, unpackb
from .types import ActResult, Action, Admission, AgentRef, BatchReply, CopyPlan, EventResult, ItemError

__all__ = [
    "OP", "Batch", "CachesageError", "Client", "hashes_bin", "MsgpackError", "packb", "unpackb",
    "ActResult", "Action", "Admission", "AgentRef", "BatchReply", "CopyPlan", "EventResult", "ItemError",
]
