"""Every validation error: INVALID_ARGUMENT with a message naming the field and the limit;
nothing is applied (the cluster revision does not move)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb

from .cluster import Cluster, status_code

pytestmark = pytest.mark.integration

MiB = 1 << 20


def _cmp(**kw: Any) -> Any:
    return pb.Compare(key=b"k", result=pb.Compare.EQUAL, **kw)


CASES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("empty key", lambda kv: kv.Put(pb.PutRequest(key=b"", value=b"v")),
     "put: key must not be empty"),
    ("key over 4 KiB", lambda kv: kv.Put(pb.PutRequest(key=b"k" * 4097, value=b"v")),
     "put: key is 4097 bytes; the limit is 4096 (max_key_bytes)"),
    ("value over 1 MiB", lambda kv: kv.Put(pb.PutRequest(key=b"k", value=b"v" * (MiB + 1))),
     f"put: value is {MiB + 1} bytes; the limit is {MiB} (max_value_bytes)"),
    ("request over 2 MiB", lambda kv: kv.Txn(pb.TxnRequest(success=[
        pb.RequestOp(put=pb.PutRequest(key=b"k%d" % i, value=b"v" * MiB)) for i in range(3)])),
     "the limit is 2097152 (max_request_bytes)"),
    ("too many txn compares", lambda kv: kv.Txn(pb.TxnRequest(
        compare=[_cmp(target=pb.Compare.VERSION, version=1)] * 129)),
     "txn: 129 compares; the limit is 128 (max_txn_ops)"),
    ("too many txn ops", lambda kv: kv.Txn(pb.TxnRequest(
        success=[pb.RequestOp(range=pb.RangeRequest(key=b"k"))] * 129)),
     "txn.success: 129 ops; the limit is 128 (max_txn_ops)"),
    ("unknown read consistency", lambda kv: kv.Range(pb.RangeRequest(key=b"k", consistency=7)),
     "range.consistency: unknown enum value 7"),
    ("unknown compare target", lambda kv: kv.Txn(pb.TxnRequest(
        compare=[_cmp(target=9, version=1)])),
     "txn.compare[0].target: unknown enum value 9"),
    ("compare value of the wrong kind", lambda kv: kv.Txn(pb.TxnRequest(
        compare=[_cmp(target=pb.Compare.VERSION, value=b"x")])),
     "txn.compare[0]: a compare on VERSION must set version"),
    ("empty txn op", lambda kv: kv.Txn(pb.TxnRequest(success=[pb.RequestOp()])),
     "txn.success[0]: no operation set"),
    ("range key over 4 KiB", lambda kv: kv.Range(pb.RangeRequest(key=b"k" * 5000)),
     "range: key is 5000 bytes; the limit is 4096 (max_key_bytes)"),
    ("prefix with range_end", lambda kv: kv.DeleteRange(
        pb.DeleteRangeRequest(key=b"a", range_end=b"b", prefix=True)),
     "delete_range: set either prefix or range_end, not both"),
    ("staleness bound on a linearizable read", lambda kv: kv.Range(
        pb.RangeRequest(key=b"k", max_staleness_ms=10)),
     "range: max_staleness_ms is only allowed with STALE reads"),
    ("session without a sequence number", lambda kv: kv.Put(
        pb.PutRequest(key=b"k", value=b"v", session=pb.Session(client_id=7))),
     "session: seq must be >= 1 when client_id is set"),
]


@pytest.mark.parametrize(("name", "call", "message"), CASES, ids=[c[0] for c in CASES])
def test_invalid_request_is_rejected_and_nothing_applied(
    shared_cluster: Cluster, name: str, call: Callable[[Any], Any], message: str
) -> None:
    leader = shared_cluster.leader()
    leader.connect()
    before = leader.status().revision
    with pytest.raises(grpc.RpcError) as info:
        call(leader.kv)
    assert status_code(info.value) == grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert message in info.value.details()
    assert leader.status().revision == before


def test_batch_stream_reports_validation_errors_per_request(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    leader.connect()
    reqs = [
        pb.BatchRequest(id=1, put=pb.PutRequest(key=b"", value=b"v")),
        pb.BatchRequest(id=2, put=pb.PutRequest(key=b"batch/ok", value=b"v")),
        pb.BatchRequest(id=3, range=pb.RangeRequest(key=b"k", consistency=5)),
        pb.BatchRequest(id=4),
    ]
    got = {r.id: r for r in leader.kv.Batch(iter(reqs), timeout=10)}
    assert sorted(got) == [1, 2, 3, 4]
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert got[1].error.code == invalid and "key must not be empty" in got[1].error.message
    assert got[2].WhichOneof("response") == "put"
    assert got[3].error.code == invalid and "unknown enum value 5" in got[3].error.message
    assert got[4].error.code == invalid and "no request set" in got[4].error.message
