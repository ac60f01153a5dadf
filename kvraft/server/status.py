"""How errors become gRPC statuses (kv.proto "Errors and redirects"), in one place.

Both the unary handlers (status + trailing metadata) and the Batch stream (a BatchError
per failed request) use :func:`describe`, so a client sees the same code, message and
leader hint either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from kvraft.errors import (
    ConfChangeInProgress,
    Corrupted,
    InvalidConfChange,
    KvRaftError,
    NotLeader,
    ProposalDropped,
    StorageError,
    TransferInProgress,
)
from kvraft.runtime.errors import DriverStopped, OutcomeUnknown, Overloaded

LEADER_ID_KEY = "x-kvraft-leader-id"
LEADER_ADDR_KEY = "x-kvraft-leader-addr"
OUTCOME_KEY = "x-kvraft-outcome"


class TooStale(KvRaftError):
    """A bounded-staleness read cannot be proven fresh enough on this node."""


class InvalidArgument(KvRaftError):
    """A request the server refuses as malformed (INVALID_ARGUMENT)."""


class ApplyFailed(KvRaftError):
    """The state machine answered a command with an error status (kv.proto ApplyError)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Failure:
    code: grpc.StatusCode
    message: str
    leader_id: int = 0
    leader_addr: str = ""
    outcome_unknown: bool = False

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        md: list[tuple[str, str]] = []
        if self.leader_id:
            md.append((LEADER_ID_KEY, str(self.leader_id)))
            if self.leader_addr:
                md.append((LEADER_ADDR_KEY, self.leader_addr))
        if self.outcome_unknown:
            md.append((OUTCOME_KEY, "unknown"))
        return tuple(md)


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def describe(exc: BaseException, address_of: Callable[[int], str]) -> Failure:
    """The status a client gets for ``exc``; ``address_of(node_id)`` gives client
    addresses for leader hints ("" if unknown). Unexpected errors are INTERNAL."""
    match exc:
        case TransferInProgress():
            return Failure(grpc.StatusCode.UNAVAILABLE,
                           "leadership transfer in progress: retry shortly")
        case NotLeader(leader_id=leader) if leader:
            addr = address_of(leader)
            where = f" at {addr}" if addr else ""
            return Failure(grpc.StatusCode.FAILED_PRECONDITION,
                           f"not leader: the leader is node {leader}{where}", leader, addr)
        case NotLeader():
            return Failure(grpc.StatusCode.UNAVAILABLE,
                           "no leader known (election in progress or partitioned): retry "
                           "with backoff")
        case OutcomeUnknown():
            return Failure(grpc.StatusCode.UNAVAILABLE, str(exc), outcome_unknown=True)
        case Overloaded():
            return Failure(grpc.StatusCode.RESOURCE_EXHAUSTED, f"overloaded: {exc}")
        case ProposalDropped():
            return Failure(grpc.StatusCode.UNAVAILABLE, f"proposal dropped: {exc}; retry")
        case InvalidArgument() | InvalidConfChange():
            return Failure(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        case ConfChangeInProgress():
            return Failure(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        case TooStale():
            return Failure(grpc.StatusCode.UNAVAILABLE, f"too stale: {exc}")
        case DriverStopped():
            return Failure(grpc.StatusCode.UNAVAILABLE, f"node unavailable: {exc}")
        case Corrupted():
            return Failure(grpc.StatusCode.DATA_LOSS,
                           f"damaged storage on this node: {exc}; use another node")
        case StorageError():
            return Failure(grpc.StatusCode.UNAVAILABLE, f"storage unavailable: {exc}")
        case ApplyFailed(code=code):
            return Failure(_CODES.get(code, grpc.StatusCode.UNKNOWN), str(exc))
        case asyncio.TimeoutError():
            return Failure(grpc.StatusCode.DEADLINE_EXCEEDED,
                           "deadline exceeded: the outcome of a write is unknown",
                           outcome_unknown=True)
        case _:
            return Failure(grpc.StatusCode.INTERNAL, f"internal error: {exc!r}")
