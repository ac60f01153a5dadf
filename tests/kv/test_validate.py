"""Validation of KV requests: every limit and structural rule, with the message naming it."""

from __future__ import annotations

from typing import Any

import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.kv.validate import (
    InvalidRequest,
    Limits,
    prefix_end,
    resolve_range,
    validate_command,
    validate_range,
)

from .helpers import cmp, delete, put, txn

LIMITS = Limits()


def command(request: Any, client: int = 0, seq: int = 0) -> Any:
    cmd = pb.Command(session=pb.Session(client_id=client, seq=seq), time_ms=1)
    field = {pb.PutRequest: "put", pb.DeleteRangeRequest: "delete_range", pb.TxnRequest: "txn"}
    getattr(cmd, field[type(request)]).CopyFrom(request)
    return cmd


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (put(b""), "put: key must not be empty"),
        (put(b"k" * 4097), r"put: key is 4097 bytes; the limit is 4096 \(max_key_bytes\)"),
        (
            put(b"k", b"v" * ((1 << 20) + 1)),
            r"put: value is 1048577 bytes; the limit is 1048576 \(max_value_bytes\)",
        ),
        (delete(b""), "delete_range: key must not be empty"),
        (delete(b"a", b"b", prefix=True), "set either prefix or range_end, not both"),
        (delete(b"a", b"z" * 5000), r"range_end is 5000 bytes; the limit is 4096"),
        (
            txn([], [put(b"k%d" % i) for i in range(129)]),
            r"txn.success: 129 ops; the limit is 128 \(max_txn_ops\)",
        ),
        (
            txn([cmp(b"k", "VERSION", "EQUAL", 1)] * 129, []),
            r"txn: 129 compares; the limit is 128 \(max_txn_ops\)",
        ),
        (txn([], [], [put(b"")]), r"txn.failure\[0\].put: key must not be empty"),
        (txn([], [put(b"a"), put(b"a")]), r"txn.success\[1\].put: duplicate key b'a'"),
        (txn([], [delete(b"a", prefix=True), put(b"ab")]), "both put and deleted"),
        (txn([cmp(b"", "VALUE", "EQUAL", b"x")], []), r"compare\[0\]: key must not be empty"),
        (
            txn([pb.Compare(key=b"k", target=pb.Compare.VERSION, value=b"x")], []),
            "a compare on VERSION must set version",
        ),
        (
            txn([pb.Compare(key=b"k", target=pb.Compare.VALUE, result=9, value=b"")], []),
            r"compare\[0\].result: unknown enum value 9",
        ),
        (txn([], [pb.RangeRequest(key=b"a", limit=-1)]), "limit must be >= 0"),
        (txn([], [pb.RangeRequest(key=b"a", consistency=7)]), "consistency: unknown enum value 7"),
    ],
)
def test_invalid_commands_name_the_rule(request_: Any, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        validate_command(command(request_), LIMITS)


def test_structure_is_checked_without_limits_and_sizes_only_with_them() -> None:
    big = command(put(b"k" * 5000, b"v" * (2 << 20)))
    validate_command(big, None)  # apply-time check: sizes are the server's business
    with pytest.raises(InvalidRequest, match="max_key_bytes"):
        validate_command(big, Limits(max_value_bytes=4 << 20, max_request_bytes=1 << 30))
    with pytest.raises(InvalidRequest, match="key must not be empty"):
        validate_command(command(put(b"")), None)


def test_request_size_limit_and_configurable_limits() -> None:
    small = Limits(max_value_bytes=10, max_request_bytes=100)
    with pytest.raises(InvalidRequest, match=r"value is 11 bytes; the limit is 10"):
        validate_command(command(put(b"k", b"v" * 11)), small)
    with pytest.raises(InvalidRequest, match=r"request is \d+ bytes; the limit is 100"):
        validate_command(command(txn([], [put(b"k%d" % i) for i in range(20)])), small)
    validate_command(command(put(b"k", b"v" * 10)), small)


def test_session_and_missing_op() -> None:
    with pytest.raises(InvalidRequest, match="seq must be >= 1"):
        validate_command(command(put(b"k"), client=5, seq=0), LIMITS)
    with pytest.raises(InvalidRequest, match="no operation set"):
        validate_command(pb.Command(time_ms=1), LIMITS)
    with pytest.raises(InvalidRequest, match=r"success\[0\]: no operation set"):
        validate_command(command(pb.TxnRequest(success=[pb.RequestOp()])), LIMITS)
    validate_command(command(put(b"k"), client=5, seq=1), LIMITS)


def test_valid_requests_pass() -> None:
    validate_command(command(put(b"k" * 4096, b"v" * (1 << 20))), LIMITS)
    ok_txn = txn(
        [cmp(b"k", "MOD", "LESS", 5)],
        [put(b"a"), delete(b"b", prefix=True), pb.RangeRequest(key=b"a", range_end=b"\0")],
        [put(b"a")],
    )
    validate_command(command(ok_txn), LIMITS)
    validate_range(pb.RangeRequest(key=b"\0", range_end=b"\0"), LIMITS)


def test_range_resolution_follows_etcd() -> None:
    assert resolve_range(b"k", b"", False) == (b"k", b"k\0")
    assert resolve_range(b"k", b"\0", False) == (b"k", None)
    assert resolve_range(b"a", b"m", False) == (b"a", b"m")
    assert resolve_range(b"ab", b"", True) == (b"ab", b"ac")
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
