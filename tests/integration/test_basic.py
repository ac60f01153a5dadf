"""A 3-node cluster elects a leader and serves the KV API with etcd's revision semantics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.server.grpc_engine import describe, prefer_polling

from .cluster import Cluster, get, put, status_code, trailing, wait_until

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


def test_health_and_reflection(shared_cluster: Cluster) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    leader = shared_cluster.leader()
    for n in shared_cluster.live():
        n.connect()
        check = health_pb2_grpc.HealthStub(n.channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    leader.connect()
    stub = reflection_pb2_grpc.ServerReflectionStub(leader.channel)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {"kvraft.v1.KV", "kvraft.v1.Admin", "kvraft.v1.Raft", "grpc.health.v1.Health"} <= names


def test_bounded_stale_read_refused_when_leader_silent(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start()
        leader = c.leader()
        put(leader, b"bound/k", b"v")
        follower = c.followers(leader)[0]
        c.wait_applied(follower, leader.status().commit_index)
        assert get(follower, b"bound/k", consistency=pb.STALE,
                   max_staleness_ms=2000).kvs[0].value == b"v"
        c.pause(leader.node_id)
        try:
            def refused() -> bool:
                try:
                    get(follower, b"bound/k", consistency=pb.STALE, max_staleness_ms=100)
                except grpc.RpcError as exc:
                    assert status_code(exc) == grpc.StatusCode.UNAVAILABLE
                    assert "too stale" in exc.details()
                    return True
                return False

            wait_until("a bounded stale read is refused", refused, 10)
            # an unbounded STALE read is still served locally
            assert get(follower, b"bound/k", consistency=pb.STALE).kvs[0].value == b"v"
        finally:
            c.resume(leader.node_id)
    finally:
        c.close()


def test_sigterm_on_leader_hands_over_leadership_and_exits_cleanly(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start()
        old = c.leader()
        put(old, b"term/k", b"v")
        proc = old.proc
        assert proc is not None
        c.kill(old.node_id, signal.SIGTERM)
        assert proc.returncode == 0
        log_text = old.log_path.read_text()
        assert '"leadership transferred"' in log_text and '"node stopped"' in log_text
        # kvraft serve chose gRPC's socket layer before grpc was imported (grpc_engine.py)
        env = dict(os.environ)
        prefer_polling(env, {})
        assert f'"grpc_io": {json.dumps(describe(env))}' in log_text
        new = c.leader(among=[n for n in c.nodes if n != old.node_id])
        assert get(new, b"term/k").kvs[0].value == b"v"
    finally:
        c.close()


def test_corrupted_log_refuses_to_start_with_one_clear_line(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    try:
        c.start()
        leader = c.leader()
        marker = b"CORRUPT-ME-" * 4
        put(leader, b"corrupt/k", marker)
        victim = c.followers(leader)[0]
        c.wait_applied(victim, leader.status().commit_index)
        c.kill(victim.node_id, signal.SIGKILL)
        data = next(victim.data_dir.rglob("data.mdb"))
        raw = bytearray(data.read_bytes())
        at = raw.find(marker)
        assert at >= 0
        while at >= 0:  # damage every copy (the log entry and the state record)
            raw[at + 3] ^= 0xFF
            at = raw.find(marker, at + 1)
        data.write_bytes(bytes(raw))
        victim_proc = subprocess.run(
            [sys.executable, "-m", "kvraft.cli.main", "serve", "--id", str(victim.node_id),
             "--peers", c.peers_flag, "--data-dir", str(victim.data_dir)],
            capture_output=True, timeout=60,
        )
        assert victim_proc.returncode != 0
        err = victim_proc.stderr.decode().strip().splitlines()
        assert len(err) == 1, err
        assert "refuses to start: damaged storage" in err[0]
        assert "raft_log" in err[0]  # names what is damaged
        assert victim_proc.stdout == b""  # never announced "serving"
    finally:
        c.close()
