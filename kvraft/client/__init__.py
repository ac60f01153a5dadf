"""kvraft's client library: :class:`Client` (asyncio) and :class:`SyncClient` (blocking).

See :mod:`kvraft.client.client` for the API, :mod:`kvraft.client.retry` for how
requests find the leader and are retried, :mod:`kvraft.client.errors` for the errors.
"""

from __future__ import annotations

from kvraft.client.client import Client
from kvraft.client.errors import (
    ClientClosed,
    ClientError,
    ConfChangeInProgress,
    FailedPrecondition,
    InvalidArgument,
    InvalidConfChange,
    NotLeader,
    OutcomeUnknown,
    ResourceExhausted,
    SnapshotTransferError,
    TooStale,
    Unavailable,
)
from kvraft.client.sync import SyncClient, SyncTxn
from kvraft.client.txn import Cmp, Compare, Op, Txn
from kvraft.client.types import (
    Consistency,
    DeleteResult,
    Header,
    KeyValue,
    Member,
    NodeStatus,
    PutResult,
    RangeResult,
    SnapshotInfo,
    TxnResult,
)

__all__ = [
    "Client", "ClientClosed", "ClientError", "Cmp", "Compare", "ConfChangeInProgress",
    "Consistency", "DeleteResult", "FailedPrecondition", "Header", "InvalidArgument",
    "InvalidConfChange", "KeyValue", "Member", "NodeStatus", "NotLeader", "Op",
    "OutcomeUnknown", "PutResult", "RangeResult", "ResourceExhausted", "SnapshotInfo",
    "SnapshotTransferError", "SyncClient", "SyncTxn", "TooStale", "Txn", "TxnResult",
    "Unavailable",
]
