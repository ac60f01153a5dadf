"""What went wrong with one attempt, and what the retry loop should do about it.

An attempt fails with a gRPC status (unary call), a ``BatchError`` (one request of the
multiplexed stream) or a broken stream. :class:`Failure` normalises all three, reading the
redirect hint and the outcome flag the server attaches (see proto/kvraft/v1/kv.proto):

- ``FAILED_PRECONDITION "not leader ..."`` + ``x-kvraft-leader-id``/``-addr`` -> redirect;
- ``UNAVAILABLE`` + ``x-kvraft-outcome: unknown`` -> a write's outcome is in doubt;
- an ``UNAVAILABLE`` that the server did not produce is a transport failure: before the
  request left the client (connect failure) it is harmless, after it (connection reset)
  a write's outcome is in doubt, like an attempt that timed out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc

LEADER_ID_KEY = "x-kvraft-leader-id"
LEADER_ADDR_KEY = "x-kvraft-leader-addr"
OUTCOME_KEY = "x-kvraft-outcome"

_CODE_BY_NUMBER = {sc.value[0]: sc for sc in grpc.StatusCode}

# How the kvraft server starts the UNAVAILABLE messages it sends without the outcome flag
# (kvraft/server/status.py): the request was certainly not applied.
_SERVER_UNAVAILABLE = ("no leader", "leadership transfer", "proposal dropped")

# Substrings of grpc-core's own messages for a connection that was never established.
_CONNECT_FAILURES = (
    "failed to connect",
    "connection refused",
    "connect failed",
    "name resolution",
    "dns resolution",
    "no route to host",
    "network is unreachable",
    "channel is in state transient_failure",
)


# grpc-core's message when a call's stream fails inside the library, not at the server.
_CORE_STREAM_BROKEN = "internal error from core"


class Kind(enum.Enum):
    """How the retry loop treats a failed attempt."""

    NOT_LEADER = "not leader"  # redirect (to the hint, else another endpoint)
    NO_LEADER = "no leader"  # the node knows no leader: back off, ask again
    TOO_STALE = "too stale"  # a bounded-staleness read refused: ask another node
    OVERLOADED = "overloaded"  # RESOURCE_EXHAUSTED: back off
    UNREACHABLE = "unreachable"  # never connected: try another endpoint
    IN_DOUBT = "in doubt"  # sent, no answer (timeout, reset, outcome unknown): retry
    DAMAGED = "damaged"  # DATA_LOSS: the node's storage is damaged; skip it (in doubt)
    INVALID = "invalid"  # INVALID_ARGUMENT: give up at once
    FATAL = "fatal"  # anything else: give up at once


@dataclass(eq=False)
class Failure(Exception):
    """One failed attempt against ``endpoint``."""

    kind: Kind
    code: str  # gRPC status name, e.g. "UNAVAILABLE"
    message: str  # the server's (or grpc's) message
    endpoint: str  # the address the attempt went to
    leader_id: int = 0  # the leader the node named, 0 if none
    leader_addr: str = ""  # its address, "" if unknown

    @property
    def in_doubt(self) -> bool:
        """True if a write attempt may have been applied."""
        return self.kind in (Kind.IN_DOUBT, Kind.DAMAGED)

    def __str__(self) -> str:
        if self.kind is Kind.UNREACHABLE:
            lowered = self.message.lower()
            why = next((s for s in ("connection refused", "no route to host",
                                    "network is unreachable") if s in lowered), "")
            return f"{self.endpoint}: cannot connect" + (f" ({why})" if why else "")
        return f"{self.endpoint}: {self.code}: {self.message}"


def _classify(code: grpc.StatusCode, message: str, from_server: bool,
              outcome_unknown: bool) -> Kind:
    lowered = message.lower()
    if code is grpc.StatusCode.FAILED_PRECONDITION and lowered.startswith("not leader"):
        return Kind.NOT_LEADER
    if code is grpc.StatusCode.UNAVAILABLE:
        if outcome_unknown:
            return Kind.IN_DOUBT
        if lowered.startswith("too stale"):
            return Kind.TOO_STALE
        if from_server or lowered.startswith(_SERVER_UNAVAILABLE):
            return Kind.NO_LEADER
        if any(s in lowered for s in _CONNECT_FAILURES):
            return Kind.UNREACHABLE
        return Kind.IN_DOUBT  # the connection broke after the request may have left
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return Kind.IN_DOUBT
    if code is grpc.StatusCode.DATA_LOSS:
        return Kind.DAMAGED
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Kind.OVERLOADED
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return Kind.INVALID
    if code is grpc.StatusCode.INTERNAL and not from_server and lowered.startswith(
            _CORE_STREAM_BROKEN):
        # grpc-core's own report of a stream that broke under a call (e.g. the node died
        # mid-write); the server's INTERNAL says "internal error: ...". The request may
        # have left, so treat it like a reset connection.
        return Kind.IN_DOUBT
    return Kind.FATAL


def _metadata_dict(md: Iterable[Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in md or ():
        key, value = item[0], item[1]
        out[str(key).lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return out


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        return 0


def from_rpc_error(err: grpc.aio.AioRpcError, endpoint: str) -> Failure:
    """Normalise a failed unary or stream call."""
    md = _metadata_dict(err.trailing_metadata())
    code = err.code()
    message = err.details() or ""
    from_server = any(k.startswith("x-kvraft-") for k in md)
    kind = _classify(code, message, from_server, md.get(OUTCOME_KEY) == "unknown")
    return Failure(kind, code.name, message, endpoint, _int(md.get(LEADER_ID_KEY, "0")),
                   md.get(LEADER_ADDR_KEY, ""))


def from_batch_error(err: Any, endpoint: str) -> Failure:
    """Normalise a ``BatchError`` (always produced by the server)."""
    code = _CODE_BY_NUMBER.get(err.code, grpc.StatusCode.UNKNOWN)
    kind = _classify(code, err.message, True, err.outcome_unknown)
    return Failure(kind, code.name, err.message, endpoint, err.leader_id, err.leader_addr)


def timed_out(endpoint: str, seconds: float) -> Failure:
    """An attempt that got no answer in time (the request may have been applied)."""
    return Failure(Kind.IN_DOUBT, "DEADLINE_EXCEEDED",
                   f"no answer within {seconds:.2f}s", endpoint)
