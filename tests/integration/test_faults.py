"""Crashes and pauses of real nodes: no acknowledged write is ever lost or applied twice."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb

from .cluster import (
    ELECTION_TIMEOUT_S,
    LEADER,
    Cluster,
    get,
    put,
    status_code,
    trailing,
    wait_until,
)
from .load import WriteLoad

pytestmark = pytest.mark.integration


def _check_all_acknowledged(c: Cluster, load: WriteLoad) -> None:
    """Every acknowledged write is readable (linearizably, from the leader) exactly once."""
    leader = c.leader()
    leader.connect()
    resp = leader.kv.Range(
        pb.RangeRequest(key=f"{load.prefix}/".encode(), prefix=True), timeout=10
    )
    stored = {kv.key: kv for kv in resp.kvs}
    missing = [(w, s) for w, s in sorted(load.acked) if load.key(w, s) not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    for w, s in load.acked:
        kv = stored[load.key(w, s)]
        assert kv.value == load.value(w, s)
        assert kv.version == 1, f"write {w}/{s} applied {kv.version} times"


def _write_until(load: WriteLoad, count: int, timeout: float = 60.0) -> None:
    wait_until(f"{count} acknowledged writes (errors: {load.errors})",
               lambda: load.count() >= count or load.errors, timeout)
    assert not load.errors, load.errors


def test_kill_leader_under_write_load(cluster: Cluster) -> None:
    c = cluster
    old = c.leader()
    load = WriteLoad([n.address for n in c.nodes.values()], writers=8)
    load.start()
    try:
        _write_until(load, 150)
        c.kill(old.node_id, signal.SIGKILL)
        acked_at_kill = load.count()
        new = c.leader(among=[n for n in c.nodes if n != old.node_id])
        assert new.node_id != old.node_id
        assert new.status().term > 0
        _write_until(load, acked_at_kill + 150)  # writes go on under the new leader
    finally:
        load.stop()
    assert not load.errors, load.errors
    _check_all_acknowledged(c, load)
    # the old leader comes back as a follower and catches up
    c.start(old.node_id)
    leader = c.leader()
    c.wait_applied(c.nodes[old.node_id], leader.status().commit_index)


def test_kill_all_nodes_and_restart_loses_nothing(cluster: Cluster) -> None:
    c = cluster
    load = WriteLoad([n.address for n in c.nodes.values()], writers=8, prefix="crash")
    load.start()
    try:
        _write_until(load, 200)
        for i in c.nodes:  # kill -9 all three while writes are in flight
            c.kill(i, signal.SIGKILL)
    finally:
        load.stop()
    revision_seen = len(load.acked)
    c.start()
    leader = c.leader()
    _check_all_acknowledged(c, load)
    assert leader.status().revision >= revision_seen


def test_stopped_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    c = Cluster(tmp_path, extra_args=["--snapshot-entries", "100"])
    try:
        c.start()
        leader = c.leader()
        lagging = c.followers(leader)[0]
        behind_at = lagging.status().log_last
        c.kill(lagging.node_id, signal.SIGKILL)
        leader.connect()
        reqs = (pb.BatchRequest(id=i, put=pb.PutRequest(key=b"snap/%05d" % i, value=b"v%d" % i))
                for i in range(600))
        answers = list(leader.kv.Batch(reqs, timeout=60))
        assert all(a.WhichOneof("response") == "put" for a in answers)
        # the leader compacted its log past everything the stopped follower has
        wait_until("the leader compacts beyond the stopped follower",
                   lambda: leader.status().log_first > behind_at + 1, 30)
        c.start(lagging.node_id)
        commit = leader.status().commit_index
        c.wait_applied(lagging, commit)
        st = lagging.status()
        assert st.snapshot_index > behind_at
        installed = c.nodes[lagging.node_id].log_path.read_text()
        assert '"installed snapshot from leader"' in installed
        assert st.log_first == st.snapshot_index + 1
        first = get(lagging, b"snap/00000", consistency=pb.STALE)
        last = get(lagging, b"snap/00599", consistency=pb.STALE)
        assert first.kvs[0].value == b"v0" and last.kvs[0].value == b"v599"
        assert first.header.node_id == lagging.node_id
    finally:
        c.close()


def test_isolated_leader_never_serves_a_linearizable_read_and_steps_down(
    cluster: Cluster,
) -> None:
    c = cluster
    leader = c.leader()
    w = leader.kv.Put(pb.PutRequest(key=b"iso/k", value=b"before"), timeout=5)
    assert w.header.revision > 0
    followers = c.followers(leader)
    for f in followers:
        c.pause(f.node_id)
    try:
        with ThreadPoolExecutor(1) as pool:  # a write in flight while leadership is lost
            write = pool.submit(lambda: put(leader, b"iso/k", b"during", timeout=5))
            with pytest.raises(grpc.RpcError) as info:
                get(leader, b"iso/k", timeout=3)
            with pytest.raises(grpc.RpcError) as lost:
                write.result(timeout=10)
        assert status_code(lost.value) in (grpc.StatusCode.UNAVAILABLE,
                                           grpc.StatusCode.DEADLINE_EXCEEDED), lost.value
        if status_code(lost.value) == grpc.StatusCode.UNAVAILABLE:
            assert trailing(lost.value).get("x-kvraft-outcome") == "unknown", lost.value
        assert status_code(info.value) in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ), info.value
        # check-quorum: without a quorum it steps down within an election timeout
        wait_until("the isolated leader steps down",
                   lambda: leader.status().role != LEADER, 4 * ELECTION_TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as again:
            get(leader, b"iso/k", timeout=3)
        assert status_code(again.value) == grpc.StatusCode.UNAVAILABLE
    finally:
        for f in followers:
            c.resume(f.node_id)
    new = c.leader()
    assert get(new, b"iso/k").kvs[0].value in (b"before", b"during")  # outcome unknown
