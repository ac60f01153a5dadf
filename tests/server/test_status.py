"""The gRPC status a client sees for each kind of failure (kv.proto "Errors and redirects")."""

from __future__ import annotations

import grpc
import pytest

from kvraft.errors import (
    ConfChangeInProgress,
    Corrupted,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    TransferInProgress,
)
from kvraft.runtime.errors import DriverStopped, OutcomeUnknown, Overloaded
from kvraft.server.status import ApplyFailed, InvalidArgument, TooStale, describe

ADDRS = {2: "127.0.0.1:7102"}


def _describe(exc: Exception):  # type: ignore[no-untyped-def]
    return describe(exc, lambda n: ADDRS.get(n, ""))


def test_not_leader_with_known_leader_redirects_in_one_hop() -> None:
    f = _describe(NotLeader(2))
    assert f.code == grpc.StatusCode.FAILED_PRECONDITION
    assert f.message == "not leader: the leader is node 2 at 127.0.0.1:7102"
    assert f.trailing_metadata() == (
        ("x-kvraft-leader-id", "2"), ("x-kvraft-leader-addr", "127.0.0.1:7102"))


def test_no_known_leader_is_unavailable_without_hint() -> None:
    f = _describe(NotLeader(0))
    assert f.code == grpc.StatusCode.UNAVAILABLE and f.trailing_metadata() == ()
    assert "no leader known" in f.message


def test_outcome_unknown_carries_metadata() -> None:
    f = _describe(OutcomeUnknown("lost"))
    assert f.code == grpc.StatusCode.UNAVAILABLE
    assert f.trailing_metadata() == (("x-kvraft-outcome", "unknown"),)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (TransferInProgress(1), grpc.StatusCode.UNAVAILABLE),
        (Overloaded("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ProposalDropped("x"), grpc.StatusCode.UNAVAILABLE),
        (InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (InvalidConfChange("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (ConfChangeInProgress("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (TooStale("x"), grpc.StatusCode.UNAVAILABLE),
        (DriverStopped("x"), grpc.StatusCode.UNAVAILABLE),
        (Corrupted("x"), grpc.StatusCode.DATA_LOSS),
        (ApplyFailed(10, "stale sequence number"), grpc.StatusCode.ABORTED),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_codes(exc: Exception, code: grpc.StatusCode) -> None:
    assert _describe(exc).code == code
