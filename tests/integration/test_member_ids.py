"""Node ids are never reused: once removed, an id is refused by MemberAdd with a clear
error (raw gRPC, the client library and the CLI), and the machine rejoins under a new id.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import grpc
import pytest

from kvraft._pb.kvraft.v1 import admin_pb2 as apb
from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.client import Client, InvalidConfChange

from .cluster import Cluster, get, put, status_code, wait_until

pytestmark = pytest.mark.integration


def refusal(node_id: int) -> str:
    return (f"node {node_id} was removed from the cluster; node ids are never reused"
            " — add it under a new id")


def test_a_removed_id_is_refused_and_the_node_rejoins_under_a_new_id(cluster: Cluster) -> None:
    c = cluster
    leader = c.leader()
    put(leader, b"ids/a", b"1")
    gone = c.followers(leader)[0]
    old = gone.node_id
    leader.admin.MemberRemove(apb.MemberRemoveRequest(node_id=old), timeout=10)
    c.kill(old)
    endpoints = [n.address for n in c.live()]

    with pytest.raises(grpc.RpcError) as info:
        leader.admin.MemberAdd(
            apb.MemberAddRequest(node_id=old, address=gone.address, learner=True), timeout=10)
    assert status_code(info.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == refusal(old)  # type: ignore[attr-defined]

    async def add_again() -> None:
        async with Client(endpoints, timeout=10) as client:
            await client.add_member(old, gone.address)

    with pytest.raises(InvalidConfChange) as typed:
        asyncio.run(add_again())
    assert str(typed.value) == f"add voter {old}: {refusal(old)}"

    r = subprocess.run(
        [sys.executable, "-m", "kvraft.cli.main", "member", "add", str(old), gone.address,
         "--endpoints", ",".join(endpoints)],
        capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"error: add voter {old}: {refusal(old)}\n"

    new = c.add_node(4)  # the same machine, an empty data dir, a new id
    c.start(4, join=True)
    added = leader.admin.MemberAdd(
        apb.MemberAddRequest(node_id=4, address=new.address, learner=True), timeout=10)
    assert {m.id for m in added.members} == {1, 2, 3, 4} - {old}
    put(leader, b"ids/b", b"2")
    c.wait_applied(new, leader.status().commit_index)
    assert get(new, b"ids/b", consistency=pb.STALE).kvs[0].value == b"2"
    wait_until("every member knows the old id is gone",
               lambda: all(old not in {m.id for m in n.status().membership} for n in c.live()))
