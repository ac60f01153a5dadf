"""How the client classifies a failed attempt: what it retries and what it gives up on."""

from __future__ import annotations

import grpc

from kvraft.client.failure import Kind, _classify


def test_a_stream_broken_inside_grpc_core_is_retried_as_in_doubt() -> None:
    # what grpc.aio reports when the node's connection dies under a stream call
    kind = _classify(grpc.StatusCode.INTERNAL, "Internal error from Core", False, False)
    assert kind is Kind.IN_DOUBT


def test_an_internal_error_the_server_reports_is_not_retried() -> None:
    kind = _classify(grpc.StatusCode.INTERNAL, "internal error: KeyError('x')", True, False)
    assert kind is Kind.FATAL
    kind = _classify(grpc.StatusCode.INTERNAL, "internal error: KeyError('x')", False, False)
    assert kind is Kind.FATAL


def test_redirects_and_outcome_flags() -> None:
    assert _classify(grpc.StatusCode.FAILED_PRECONDITION, "not leader; leader is 2",
                     True, False) is Kind.NOT_LEADER
    assert _classify(grpc.StatusCode.UNAVAILABLE, "leadership lost", True,
                     True) is Kind.IN_DOUBT
    assert _classify(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses",
                     False, False) is Kind.UNREACHABLE
