"""Operator calls against a real cluster: membership changes with a joining node,
leadership transfer, snapshots on demand and streaming the latest snapshot."""

from __future__ import annotations

import zlib

import grpc
import pytest

from kvraft._pb.kvraft.v1 import admin_pb2 as apb
from kvraft._pb.kvraft.v1 import kv_pb2 as pb

from .cluster import LEADER, Cluster, get, put, status_code, trailing, wait_until

pytestmark = pytest.mark.integration


def _members(resp: apb.MemberListResponse) -> dict[int, tuple[str, bool]]:
    return {m.id: (m.address, m.learner) for m in resp.members}


def test_join_as_learner_promote_and_remove(cluster: Cluster) -> None:
    c = cluster
    leader = c.leader()
    for i in range(20):
        put(leader, b"m/%02d" % i, b"v%d" % i)
    new = c.add_node(4)
    c.start(4, join=True)
    added = leader.admin.MemberAdd(
        apb.MemberAddRequest(node_id=4, address=new.address, learner=True), timeout=10)
    assert _members(added)[4] == (new.address, True)
    c.wait_applied(new, leader.status().commit_index)
    assert get(new, b"m/19", consistency=pb.STALE).kvs[0].value == b"v19"
    assert new.status().role == apb.LEARNER
    promoted = leader.admin.MemberPromote(apb.MemberPromoteRequest(node_id=4), timeout=10)
    assert _members(promoted)[4] == (new.address, False)
    wait_until("the new voter sees itself as a voter",
               lambda: 4 in {m.id for m in new.status().membership if not m.learner})
    # with 4 voters, losing one still leaves a quorum: writes go on
    put(leader, b"m/after", b"x")
    removed = leader.admin.MemberRemove(apb.MemberRemoveRequest(node_id=4), timeout=10)
    assert 4 not in _members(removed)
    listed = c.nodes[2].admin.MemberList(apb.MemberListRequest(), timeout=5)
    wait_until("every member sees the removal",
               lambda: all(4 not in _members(n.admin.MemberList(apb.MemberListRequest(),
                                                                 timeout=5))
                           for n in c.nodes.values() if n.node_id != 4))
    assert listed.header.node_id == 2


def test_membership_change_errors(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    follower = c.followers(leader)[0]
    with pytest.raises(grpc.RpcError) as info:
        follower.admin.MemberRemove(apb.MemberRemoveRequest(node_id=3), timeout=5)
    assert status_code(info.value) == grpc.StatusCode.FAILED_PRECONDITION
    assert trailing(info.value)["x-kvraft-leader-id"] == str(leader.node_id)
    with pytest.raises(grpc.RpcError) as bad:
        leader.admin.MemberRemove(apb.MemberRemoveRequest(node_id=9), timeout=5)
    assert status_code(bad.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a member" in bad.value.details()


def test_transfer_leadership(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    target = c.followers(leader)[0]
    resp = leader.admin.TransferLeader(apb.TransferLeaderRequest(to=target.node_id), timeout=10)
    assert resp.leader_id == target.node_id
    assert c.leader().node_id == target.node_id
    assert target.status().role == LEADER
    # to = 0: the most up-to-date other voter
    auto = target.admin.TransferLeader(apb.TransferLeaderRequest(), timeout=10)
    assert auto.leader_id not in (0, target.node_id)


def test_take_and_save_snapshot(shared_cluster: Cluster) -> None:
    c = shared_cluster
    leader = c.leader()
    put(leader, b"snapme", b"1")
    taken = leader.admin.TakeSnapshot(apb.TakeSnapshotRequest(), timeout=30)
    st = leader.status()
    assert taken.index > 0 and taken.size_bytes > 0
    assert st.snapshot_index == taken.index and st.log_first == taken.index + 1
    chunks = list(leader.admin.SaveSnapshot(apb.SaveSnapshotRequest(), timeout=30))
    assert chunks[0].index == taken.index and chunks[0].term == taken.term
    assert chunks[-1].last
    data = b"".join(ch.data for ch in chunks)
    assert len(data) == chunks[0].total_size == taken.size_bytes
    assert all(zlib.crc32(ch.data) == ch.crc32 for ch in chunks)
    assert zlib.crc32(data) == chunks[-1].file_crc32
    assert data.startswith(b"KVRSNAP\n")
