"""The client against a real 3-node cluster: redirects, failover, exactly-once retries,
consistency levels, deadlines and the typed errors."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kvraft import Client, SyncClient
from kvraft._pb.kvraft.v1 import kv_pb2, kv_pb2_grpc
from kvraft.client import (
    Cmp,
    InvalidArgument,
    InvalidConfChange,
    NotLeader,
    Op,
    OutcomeUnknown,
    TooStale,
    Unavailable,
)
from kvraft.cluster_launcher import LocalCluster
from kvraft.cluster_launcher.spec import free_ports
from kvraft.storage.snapshot import verify
from tests.client.realcluster import heal, running_cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("cluster"))


@pytest.fixture
def leader(cluster: LocalCluster) -> int:
    """A healthy cluster for each test (a test may have killed or paused nodes)."""
    return heal(cluster)


def followers(cluster: LocalCluster, leader: int) -> list[int]:
    return [i for i in cluster.spec.ids if i != leader]


def test_leader_discovery_and_one_hop_redirects(cluster: LocalCluster, leader: int) -> None:
    f = followers(cluster, leader)
    with SyncClient(cluster.endpoints([f[0]])) as c:
        r = c.put("redirect", "v")  # the follower's Status names the leader
        assert r.header.node_id == leader
        assert c.leader == cluster.spec.node(leader).address
        stats = c._client.stats
        assert (stats.discoveries, stats.attempts, stats.redirects) == (1, 1, 0)
        with SyncClient(cluster.endpoints()) as admin:
            admin.transfer_leadership(f[1])
        wait_for(lambda: (st := cluster.status(leader)) is not None and st.leader_id == f[1]
                 or None, 10, "the old leader to follow the new one")
        kv = c.get("redirect")  # the cached leader answers "not leader, ask f[1]"
        assert kv is not None and kv.value == b"v" and kv.key == b"redirect"
        assert (stats.discoveries, stats.attempts, stats.redirects) == (1, 3, 1)
        assert c.leader == cluster.spec.node(f[1]).address


def test_not_leader_without_redirects(cluster: LocalCluster, leader: int) -> None:
    f = followers(cluster, leader)[0]
    with SyncClient(cluster.endpoints([f]), follow_redirects=False) as c:
        with pytest.raises(NotLeader) as info:
            c.put("k", "v")
    assert info.value.leader_id == leader
    assert info.value.leader_addr == cluster.spec.node(leader).address


def test_failover_when_the_leader_is_killed(cluster: LocalCluster, leader: int) -> None:
    with SyncClient(cluster.endpoints(), timeout=15) as c:
        c.put("failover", "before")
        cluster.kill_node(leader)
        r = c.put("failover", "after")
        assert r.header.node_id != leader
        kv = c.get("failover")
        assert kv is not None and (kv.value, kv.version) == (b"after", 2)


def test_a_retried_write_is_applied_once(cluster: LocalCluster, leader: int) -> None:
    """The same (client_id, seq) sent twice, across a leadership change: one apply."""
    client_id = secrets.randbits(63) | 1
    req = kv_pb2.PutRequest(key=b"once", value=b"x",
                            session=kv_pb2.Session(client_id=client_id, seq=1))

    def send(node_id: int) -> kv_pb2.PutResponse:
        with grpc.insecure_channel(cluster.spec.node(node_id).address) as ch:
            return kv_pb2_grpc.KVStub(ch).Put(req, timeout=5)

    first = send(leader)
    again = send(leader)
    assert again.header.revision == first.header.revision
    with SyncClient(cluster.endpoints()) as c:
        new = c.transfer_leadership(followers(cluster, leader)[0])
        third = send(new)
        assert third.header.revision == first.header.revision
        kv = c.get("once")
        assert kv is not None and kv.version == 1 and kv.mod_revision == first.header.revision


def test_a_write_stuck_on_a_paused_leader_is_retried_elsewhere_once(
        cluster: LocalCluster, leader: int) -> None:
    with SyncClient(cluster.endpoints(), timeout=20, attempt_timeout=1.0) as c:
        c.put("paused", "v1")
        assert c.leader == cluster.spec.node(leader).address
        cluster.pause_node(leader)
        r = c.put("paused", "v2")  # times out on the old leader, then goes to the new one
        assert r.header.node_id != leader
        cluster.resume_node(leader)
        kv = c.get("paused")
        assert kv is not None and (kv.value, kv.version) == (b"v2", 2)


def test_deadline_while_the_outcome_is_in_doubt(cluster: LocalCluster, leader: int) -> None:
    with SyncClient(cluster.endpoints([leader]), timeout=1.5, attempt_timeout=0.5) as c:
        c.put("doubt", "v1")
        for f in followers(cluster, leader):
            cluster.pause_node(f)  # the leader can propose but never commit
        with pytest.raises(OutcomeUnknown, match="outcome unknown"):
            c.put("doubt", "v2")
    heal(cluster)
    with SyncClient(cluster.endpoints(), timeout=10) as c:
        kv = c.get("doubt")
        assert kv is not None and kv.version in (1, 2)  # at most once
        assert kv.value == (b"v1" if kv.version == 1 else b"v2")


def test_consistency_levels(cluster: LocalCluster, leader: int) -> None:
    f = followers(cluster, leader)
    with SyncClient(cluster.endpoints(), timeout=10) as c:
        c.put("levels", "v")
        for level in ("linearizable", "lease"):
            kv = c.get("levels", consistency=level)
            assert kv is not None and kv.value == b"v"
        with SyncClient(cluster.endpoints(f)) as follower_only:
            kv = wait_for(lambda: follower_only.get("levels", consistency="stale"), 5,
                          "a follower to apply the write")
            assert kv.value == b"v"
            kv = follower_only.get("levels", consistency="stale", max_staleness=5.0)
            assert kv is not None
    # lose the quorum: only stale reads can be served, and only without a bound
    cluster.kill_node(f[0])
    cluster.kill_node(f[1])
    with SyncClient(cluster.endpoints([leader]), timeout=1.5) as c:
        kv = c.get("levels", consistency="stale")
        assert kv is not None and kv.value == b"v"
        with pytest.raises(Unavailable):
            c.get("levels")
        with pytest.raises((Unavailable, OutcomeUnknown)):  # unknown if it was proposed
            c.put("levels", "w")

        def refused() -> bool | None:
            try:
                c.get("levels", consistency="stale", max_staleness=0.2, timeout=0.3)
            except TooStale:
                return True
            except Unavailable:  # still leader (check-quorum has not run): its proof waits
                return None
            return None

        wait_for(refused, 10, "a bounded-staleness read to be refused")


def test_invalid_arguments_name_the_limit(cluster: LocalCluster, leader: int) -> None:
    with SyncClient(cluster.endpoints()) as c:
        with pytest.raises(InvalidArgument, match="4096"):
            c.put("k" * 5000, "v")
        with pytest.raises(InvalidArgument, match="empty"):
            c.put("", "v")
        with pytest.raises(InvalidArgument, match="1048576"):
            c.put("big", b"x" * (1 << 20 + 1))
        ops = [Op.put(f"t{i}", "v") for i in range(200)]
        with pytest.raises(InvalidArgument, match="128"):
            c.txn().then(*ops).commit()
        with pytest.raises(InvalidConfChange):
            c.remove_member(99)
        assert c.get("big") is None


def test_unreachable_cluster_is_unavailable() -> None:
    dead = [f"127.0.0.1:{p}" for p in free_ports(3)]
    with SyncClient(dead, timeout=0.5) as c, pytest.raises(Unavailable, match="kvraft status"):
        c.put("k", "v")


def test_api_round_trip(cluster: LocalCluster, leader: int, tmp_path: Path) -> None:
    with SyncClient(cluster.endpoints(), timeout=10) as c:
        for i in range(30):
            c.put(f"rt/{i:02}", str(i))
        assert [kv.key for kv in c.scan(prefix="rt/", page_size=7)] == [
            f"rt/{i:02}".encode() for i in range(30)]
        page = c.range("rt/", prefix=True, limit=5)
        assert len(page.kvs) == 5 and page.more and page.count == 30
        r = c.txn().if_(Cmp.value("rt/00") == "0").then(Op.delete("rt/", prefix=True)).commit()
        assert r.succeeded and r.responses[0].deleted == 30  # type: ignore[union-attr]
        prev = c.put("rt/x", "1", prev_kv=True).prev_kv
        assert prev is None
        assert c.put("rt/x", "2", prev_kv=True).prev_kv.value == b"1"  # type: ignore[union-attr]
        assert c.delete("rt/x").deleted == 1
        statuses = c.cluster_status()
        assert sorted(st.id for _, st in statuses) == [1, 2, 3]  # type: ignore[union-attr]
        assert [m.id for m in c.members()] == [1, 2, 3]
        info = c.snapshot()
        saved = c.save_snapshot(tmp_path / "s.snap")
        assert saved.index >= info.index > 0
        assert verify(tmp_path / "s.snap").position.index == saved.index


def test_many_concurrent_writers_share_streams(cluster: LocalCluster, leader: int) -> None:
    async def main() -> None:
        async with Client(cluster.endpoints(), timeout=20) as c:
            await asyncio.gather(*(c.put(f"conc/{i}", str(i)) for i in range(300)))
            count = (await c.range("conc/", prefix=True, count_only=True)).count
            assert count == 300
            assert c.stats.attempts < 330  # redirects aside, one attempt per write

    asyncio.run(main())


def test_sync_client_is_thread_safe(cluster: LocalCluster, leader: int) -> None:
    with SyncClient(cluster.endpoints(), timeout=20) as c:
        threads = [threading.Thread(target=lambda t=t: [c.put(f"th/{t}/{i}", "v")
                                                         for i in range(10)])
                   for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert c.range("th/", prefix=True, count_only=True).count == 40
