"""A 3-node cluster elects a leader and serves the KV API with etcd's revision semantics."""

from __future__ import annotations

import grpc
import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb

from .cluster import Cluster, get, put, status_code, trailing

pytestmark = pytest.mark.integration


def test_elects_one_leader_that_every_node_knows(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    statuses = [n.status() for n in shared_cluster.live()]
    assert {s.leader_id for s in statuses} == {leader.node_id}
    assert len({s.term for s in statuses}) == 1
    assert all(s.healthy for s in statuses)
    assert sorted(m.id for m in statuses[0].membership) == [1, 2, 3]


def test_put_get_delete_range_txn_revisions(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    kv = leader.kv
    p = "rev/"
    r1 = put(leader, b"rev/a", b"1")
    base = r1.header.revision
    r2 = put(leader, b"rev/b", b"2")
    assert r2.header.revision == base + 1
    r3 = put(leader, b"rev/a", b"3", prev_kv=True)
    assert r3.header.revision == base + 2
    assert r3.prev_kv.value == b"1" and r3.prev_kv.version == 1

    got = get(leader, b"rev/a").kvs[0]
    assert (got.value, got.create_revision, got.mod_revision, got.version) == (
        b"3", base, base + 2, 2)

    scan = kv.Range(pb.RangeRequest(key=p.encode(), prefix=True), timeout=5)
    assert [k.key for k in scan.kvs] == [b"rev/a", b"rev/b"] and scan.count == 2
    limited = kv.Range(pb.RangeRequest(key=b"rev/", range_end=b"rev0", limit=1), timeout=5)
    assert [k.key for k in limited.kvs] == [b"rev/a"] and limited.more and limited.count == 2

    # a txn: compare on version, then delete one key and put another, atomically
    txn = pb.TxnRequest(
        compare=[pb.Compare(key=b"rev/a", target=pb.Compare.VERSION,
                            result=pb.Compare.EQUAL, version=2)],
        success=[pb.RequestOp(delete_range=pb.DeleteRangeRequest(key=b"rev/b")),
                 pb.RequestOp(put=pb.PutRequest(key=b"rev/c", value=b"c"))],
        failure=[pb.RequestOp(range=pb.RangeRequest(key=b"rev/a"))],
    )
    t = kv.Txn(txn, timeout=5)
    assert t.succeeded and t.header.revision == base + 3
    assert t.responses[0].delete_range.deleted == 1
    again = kv.Txn(txn, timeout=5)  # rev/a was not written: the compare still holds
    assert again.succeeded
    failing = pb.TxnRequest(
        compare=[pb.Compare(key=b"rev/a", target=pb.Compare.VALUE,
                            result=pb.Compare.EQUAL, value=b"nope")],
        failure=[pb.RequestOp(range=pb.RangeRequest(key=b"rev/a"))],
    )
    f = kv.Txn(failing, timeout=5)
    assert not f.succeeded and f.responses[0].range.kvs[0].value == b"3"
    rev_before = f.header.revision

    d = kv.DeleteRange(pb.DeleteRangeRequest(key=b"rev/", prefix=True, prev_kv=True), timeout=5)
    assert d.deleted == 2 and d.header.revision == rev_before + 1
    assert sorted(k.key for k in d.prev_kvs) == [b"rev/a", b"rev/c"]
    assert get(leader, b"rev/a").count == 0
    # re-created after a delete: a new incarnation with version 1
    r = put(leader, b"rev/a", b"new")
    kva = get(leader, b"rev/a").kvs[0]
    assert kva.version == 1 and kva.create_revision == r.header.revision
    # every response names the node, its term and the leader
    assert r.header.node_id == leader.node_id and r.header.leader_id == leader.node_id


def test_follower_redirects_writes_and_linearizable_reads(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    follower = c.followers(leader)[0]
    for call in (lambda: put(follower, b"x", b"1"), lambda: get(follower, b"x")):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert status_code(info.value) == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details().startswith("not leader")
        md = trailing(info.value)
        assert md["x-kvraft-leader-id"] == str(leader.node_id)
        assert md["x-kvraft-leader-addr"] == leader.address


def test_stale_read_on_follower_is_served_locally(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    w = put(leader, b"stale/k", b"v1")
    follower = c.followers(leader)[0]
    c.wait_applied(follower, leader.status().commit_index)
    r = get(follower, b"stale/k", consistency=pb.STALE)
    assert r.kvs[0].value == b"v1"
    assert r.header.node_id == follower.node_id  # answered by the follower itself
    assert r.header.revision >= w.header.revision
    bounded = get(follower, b"stale/k", consistency=pb.STALE, max_staleness_ms=5000)
    assert bounded.kvs[0].value == b"v1"


def test_retried_write_with_same_session_applies_once(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    first = put(leader, b"once/k", b"v", session=(4242, 1))
    retry = put(leader, b"once/k", b"v", session=(4242, 1))
    assert retry.header.revision == first.header.revision  # the stored result, not re-applied
    kv = get(leader, b"once/k").kvs[0]
    assert kv.version == 1 and kv.mod_revision == first.header.revision
    second = put(leader, b"once/k", b"v2", session=(4242, 2))
    assert second.header.revision > first.header.revision
    assert get(leader, b"once/k").kvs[0].version == 2
