"""Member addresses are replicated state: a node that joins after the log was compacted
learns every member's address from the snapshot it installs, though its --peers names
only the leader -- it names every member (Status, MemberList) and, once leader, reaches
them all."""

from __future__ import annotations

import json
import signal

import grpc
import lmdb
import pytest

from kvraft._pb.kvraft.v1 import admin_pb2 as apb
from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.storage.state import DB_META

from .cluster import Cluster, Node, get, put, status_code, wait_until

pytestmark = pytest.mark.integration

SNAPSHOT_ENTRIES = 20


def transferred(leader: Node, to: int) -> bool:
    """Ask ``leader`` to hand over to ``to``; a transfer that did not complete in time
    (``to`` still catching up) is asked again by the caller."""
    if leader.status().leader_id == to:  # an earlier attempt completed after its answer
        return True
    try:
        resp = leader.admin.TransferLeader(apb.TransferLeaderRequest(to=to), timeout=10)
    except grpc.RpcError as exc:
        if status_code(exc) != grpc.StatusCode.UNAVAILABLE:
            raise
        return False
    return bool(resp.leader_id == to)


@pytest.fixture
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return Cluster(tmp_path_factory.mktemp("compacting"),
                   extra_args=["--snapshot-entries", str(SNAPSHOT_ENTRIES)])


def test_a_node_joining_after_compaction_learns_every_address(compacting: Cluster) -> None:
    c = compacting
    try:
        c.start()
        leader = c.leader()
        for i in range(3 * SNAPSHOT_ENTRIES):
            put(leader, b"addr/%03d" % i, b"v%d" % i)
        # the bootstrap entries (the only ones naming members 1..3) are compacted away
        wait_until("the leader compacted its log",
                   lambda: leader.status().log_first > 3 + SNAPSHOT_ENTRIES)

        new = c.add_node(4)
        c.start(4, join=True, peers=f"{leader.node_id}={leader.address}")
        leader.admin.MemberAdd(
            apb.MemberAddRequest(node_id=4, address=new.address, learner=True), timeout=10)
        put(leader, b"addr/after", b"joined")
        c.wait_applied(new, leader.status().commit_index)
        assert new.status().snapshot_index > 3  # it started from a snapshot, not the log
        assert get(new, b"addr/after", consistency=pb.STALE).kvs[0].value == b"joined"

        want = {n.node_id: n.address for n in c.nodes.values()}
        listed = new.admin.MemberList(apb.MemberListRequest(), timeout=5).members
        assert {m.id: m.address for m in listed} == want
        assert {m.id: m.address for m in new.status().membership} == want

        # as leader, node 4 must reach the members its --peers did not name
        leader.admin.MemberPromote(apb.MemberPromoteRequest(node_id=4), timeout=10)
        wait_until("node 4 applied its promotion", lambda: not any(
            m.learner for m in new.status().membership if m.id == 4))
        wait_until("leadership moved to node 4", lambda: transferred(leader, 4))
        assert c.leader().node_id == 4
        put(new, b"addr/led-by-4", b"yes")
        commit = new.status().commit_index
        for n in c.live():
            c.wait_applied(n, commit)
            assert get(n, b"addr/led-by-4", consistency=pb.STALE).kvs[0].value == b"yes"
    finally:
        c.close()


def test_a_data_dir_of_an_older_build_starts_with_its_address_cache(cluster: Cluster) -> None:
    """An older build kept learned addresses only in members.json: the node starts, the
    file seeds the replicated record (then goes), and the node still names every member
    though its --peers names only itself."""
    c = cluster
    put(c.leader(), b"old/k", b"v")
    n = c.nodes[3]
    c.kill(3, signal.SIGTERM)
    env = lmdb.open(str(n.data_dir / "db"), max_dbs=16, subdir=True)
    try:  # make it look like an older build's data dir: no record, the cache file
        with env.begin(write=True) as txn:
            assert txn.delete(b"members", db=env.open_db(DB_META, txn=txn))
    finally:
        env.close()
    want = {m.node_id: m.address for m in c.nodes.values()}
    (n.data_dir / "members.json").write_text(json.dumps({str(i): a for i, a in want.items()}))
    c.start(3, peers=f"3={n.address}")
    assert {m.id: m.address for m in n.status().membership} == want
    assert not (n.data_dir / "members.json").exists()
    put(c.leader(), b"old/k2", b"v2")
    c.wait_applied(n, c.leader().status().commit_index)
    assert get(n, b"old/k2", consistency=pb.STALE).kvs[0].value == b"v2"
