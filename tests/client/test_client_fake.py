"""Client behaviour against fake nodes: routing, redirects, retries, exactly-once writes,
read consistency routing, paging, transactions and the typed errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kvraft.client import (
    Client,
    Cmp,
    ConfChangeInProgress,
    InvalidArgument,
    InvalidConfChange,
    NotLeader,
    Op,
    OutcomeUnknown,
    ResourceExhausted,
    SnapshotTransferError,
    TooStale,
    Unavailable,
)
from kvraft.cluster_launcher.spec import free_ports
from tests.client.fakes import FakeCluster

Scenario = Callable[[FakeCluster], Awaitable[None]]


def run(scenario: Scenario, size: int = 3) -> None:
    async def main() -> None:
        async with FakeCluster(size) as cluster:
            await scenario(cluster)

    asyncio.run(main())


def client(cluster: FakeCluster, endpoints: list[str] | None = None, **kw: object) -> Client:
    opts: dict[str, object] = {"timeout": 2.0, "attempt_timeout": 0.5,
                               "rng": random.Random(7)}
    opts.update(kw)
    return Client(endpoints or cluster.endpoints, **opts)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_batch", [True, False])
def test_leader_is_discovered_then_cached_and_a_stale_cache_redirects_in_one_hop(
        use_batch: bool) -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 2
        async with client(cluster, [cluster.node(1).address], use_batch=use_batch) as c:
            await c.put("a", "1")
            assert cluster.node(1).calls["put"] == 0  # asked who leads, not to write
            assert cluster.node(2).calls["put"] == 1
            assert c.leader == cluster.node(2).address
            assert (c.stats.discoveries, c.stats.attempts) == (1, 1)
            await c.put("b", "2")
            kv = await c.get("a")
            assert kv is not None and kv.value == b"1" and kv.version == 1
            assert (c.stats.discoveries, c.stats.attempts) == (1, 3)  # cached
            cluster.leader = 3  # the cached leader is now a follower that names node 3
            await c.put("c", "3")
            assert cluster.node(2).calls["put"] == 3 and cluster.node(3).calls["put"] == 1
            assert c.stats.redirects == 1 and c.leader == cluster.node(3).address
        assert cluster.store.applied == 3

    run(scenario)


def test_many_callers_share_one_leader_search() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 3
        async with client(cluster) as c:
            await asyncio.gather(*(c.put(f"k{i}", "v") for i in range(50)))
            assert c.stats.discoveries == 1 and c.stats.redirects == 0
        assert cluster.node(3).calls["put"] == 50

    run(scenario)


def test_concurrent_callers_share_one_batch_stream_per_node() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster, [cluster.node(1).address], timeout=5.0) as c:
            await asyncio.gather(*(c.put(f"k{i:03}", str(i)) for i in range(200)))
            keys = [kv.key async for kv in c.scan(prefix="k")]
        assert keys == [f"k{i:03}".encode() for i in range(200)]
        assert cluster.node(1).calls["batch-open"] == 1
        assert cluster.node(1).calls["put"] == 200
        assert cluster.store.applied == 200
        # each session's sequence numbers reach the server strictly in order
        for seqs in cluster.store.seqs.values():
            assert seqs == sorted(set(seqs))

    run(scenario)


def test_falls_back_to_unary_when_the_node_has_no_batch_stream() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        for n in cluster.nodes:
            n.behaviour.batch = False
        async with client(cluster) as c:
            await c.put("k", "v")
            await c.put("k", "w")
            kv = await c.get("k")
        assert kv is not None and (kv.value, kv.version) == (b"w", 2)
        assert cluster.store.applied == 2

    run(scenario)


def test_a_lost_outcome_is_retried_with_the_same_seq_and_applied_once() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.node(1).behaviour.lose_outcome = 2
        async with client(cluster) as c:
            r = await c.put("k", "v")
        assert cluster.node(1).calls["put"] == 3
        assert cluster.store.applied == 1
        assert r.header.revision == 1
        (seqs,) = cluster.store.seqs.values()
        assert seqs == [1, 1, 1]

    run(scenario)


def test_failover_when_the_leader_dies_and_another_takes_over() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster, timeout=10.0) as c:
            await c.put("k", "1")
            assert c.leader == cluster.node(1).address
            await cluster.node(1).stop()
            cluster.leader = 3
            await c.put("k", "2")
            kv = await c.get("k")
        assert kv is not None and kv.value == b"2"
        assert c.leader == cluster.node(3).address

    run(scenario)


def test_a_silent_leader_is_left_for_a_new_one_within_the_deadline() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster, timeout=3.0, attempt_timeout=0.3) as c:
            await c.put("k", "1")
            cluster.node(1).behaviour.silent = True  # partitioned away
            cluster.leader = 2
            await c.put("k", "2")
        assert cluster.store.data[b"k"].value == b"2"

    run(scenario)


def test_deadline_with_the_outcome_in_doubt_raises_outcome_unknown() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster, timeout=0.6, attempt_timeout=0.2) as c:
            await c.put("k", "1")
            cluster.node(1).behaviour.silent = True
            with pytest.raises(OutcomeUnknown, match="outcome unknown") as info:
                await c.put("k", "2")
            assert info.value.endpoint == cluster.node(1).address
            # the next write uses a fresh session: the doubtful one is never reused
            cluster.node(1).behaviour.silent = False
            await c.put("k", "3")
            assert c.sessions_created == 2
            # a read that times out is simply unavailable
            cluster.node(1).behaviour.silent = True
            with pytest.raises(Unavailable):
                await c.get("k")

    run(scenario)


def test_outcome_unknown_answers_until_the_deadline_raise_outcome_unknown() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.node(1).behaviour.refuse_outcome = 10**6
        async with client(cluster, timeout=0.5) as c:
            with pytest.raises(OutcomeUnknown):
                await c.put("k", "v")
        assert cluster.store.applied == 0

    run(scenario)


def test_no_leader_until_the_deadline_is_unavailable_and_nothing_applied() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 0
        async with client(cluster, timeout=0.5) as c:
            with pytest.raises(Unavailable, match="kvraft status") as info:
                await c.put("k", "v")
        assert not isinstance(info.value, OutcomeUnknown)
        assert "no leader" in str(info.value)
        assert cluster.store.applied == 0

    run(scenario)


def test_election_in_progress_is_waited_out() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 0

        async def elect() -> None:
            await asyncio.sleep(0.3)
            cluster.leader = 3

        async with client(cluster, timeout=3.0) as c:
            await asyncio.gather(c.put("k", "v"), elect())
        assert cluster.store.applied == 1

    run(scenario)


def test_unreachable_endpoints_are_skipped() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        dead = [f"127.0.0.1:{p}" for p in free_ports(2)]
        cluster.leader = 1
        async with client(cluster, dead + [cluster.node(1).address], timeout=3.0) as c:
            for i in range(5):
                await c.put(f"k{i}", "v")
        assert cluster.store.applied == 5

    run(scenario)


def test_nothing_listening_anywhere_is_unavailable() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        dead = [f"127.0.0.1:{p}" for p in free_ports(3)]
        async with client(cluster, dead, timeout=0.5) as c:
            with pytest.raises(Unavailable) as info:
                await c.put("k", "v")
        assert not isinstance(info.value, OutcomeUnknown)
        assert all(d in str(info.value) for d in dead)

    run(scenario)


def test_invalid_argument_is_raised_at_once() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster) as c:
            with pytest.raises(InvalidArgument, match="key is empty"):
                await c.put("", "v")
        assert sum(n.calls["put"] for n in cluster.nodes) == 1  # not retried

    run(scenario)


def test_without_redirects_a_follower_raises_not_leader_with_the_hint() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 3
        async with client(cluster, [cluster.node(1).address], follow_redirects=False) as c:
            with pytest.raises(NotLeader) as info:
                await c.put("k", "v")
        assert info.value.leader_id == 3
        assert info.value.leader_addr == cluster.node(3).address

    run(scenario)


def test_a_follower_without_a_hint_sends_the_client_round_the_nodes() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 3
        for n in cluster.nodes:
            n.behaviour.hint = False
        async with client(cluster) as c:
            await c.put("k", "v")
        assert cluster.store.applied == 1

    run(scenario)


def test_overload_is_retried_then_reported() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.node(1).behaviour.overloaded = 2
        async with client(cluster) as c:
            await c.put("k", "v")
            cluster.node(1).behaviour.overloaded = 10**6
            with pytest.raises(ResourceExhausted, match="overloaded"):
                await c.put("k", "w", timeout=0.4)
        assert cluster.store.data[b"k"].value == b"v"

    run(scenario)


def test_stale_reads_spread_over_nodes_and_need_no_leader() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.store.put(b"k", b"v", False)
        cluster.leader = 0
        async with client(cluster) as c:
            for _ in range(30):
                kv = await c.get("k", consistency="stale")
                assert kv is not None and kv.value == b"v"
            with pytest.raises(Unavailable):
                await c.get("k", timeout=0.3)  # linearizable needs a leader
        assert all(n.calls["range"] >= 5 for n in cluster.nodes)

    run(scenario)


def test_a_node_with_damaged_storage_is_skipped() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.store.put(b"k", b"v", False)
        cluster.node(2).behaviour.damaged = True
        async with client(cluster) as c:
            for _ in range(10):
                kv = await c.get("k", consistency="stale")
                assert kv is not None and kv.value == b"v"
            cluster.node(1).behaviour.damaged = True  # the leader itself
            with pytest.raises(OutcomeUnknown, match="damaged storage"):
                await c.put("k", "w", timeout=0.5)
        assert cluster.node(2).calls["range"] <= 2  # skipped after the first refusal

    run(scenario)


def test_bounded_staleness_moves_to_a_fresh_enough_node() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.store.put(b"k", b"v", False)
        cluster.node(1).behaviour.too_stale = True
        cluster.node(2).behaviour.too_stale = True
        async with client(cluster) as c:
            for _ in range(5):
                kv = await c.get("k", consistency="STALE", max_staleness=0.5)
                assert kv is not None
            cluster.node(3).behaviour.too_stale = True
            with pytest.raises(TooStale, match="fresh enough"):
                await c.get("k", consistency="stale", max_staleness=0.5, timeout=0.3)
            with pytest.raises(ValueError, match="only to STALE"):
                await c.get("k", max_staleness=1.0)

    run(scenario)


def test_lease_and_linearizable_reads_go_to_the_leader() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        cluster.leader = 2
        async with client(cluster, [cluster.node(2).address, cluster.node(3).address]) as c:
            await c.put("k", "v")
            for level in ("linearizable", "lease"):
                kv = await c.get("k", consistency=level)
                assert kv is not None and kv.value == b"v"
        assert cluster.node(3).calls["range"] == 0

    run(scenario)


def test_scan_pages_through_a_large_range_in_order() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        for i in range(2500):
            cluster.store.put(f"p/{i:05}".encode(), b"x", False)
        cluster.store.put(b"q", b"y", False)
        async with client(cluster) as c:
            got = [kv.key async for kv in c.scan(prefix="p/", page_size=1000)]
            assert got == [f"p/{i:05}".encode() for i in range(2500)]
            assert cluster.node(1).calls["range"] == 3
            some = [kv.key async for kv in c.scan("p/00100", "p/00200", limit=30)]
            assert some == [f"p/{i:05}".encode() for i in range(100, 130)]
            everything = [kv.key async for kv in c.scan(page_size=999)]
            assert len(everything) == 2501 and everything[-1] == b"q"
            page = await c.range("p/", prefix=True, limit=10, keys_only=True)
            assert len(page.kvs) == 10 and page.more and page.count == 2500
            assert all(kv.value == b"" for kv in page.kvs)

    run(scenario)


def test_delete_and_delete_range() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster) as c:
            for k in ("a/1", "a/2", "b"):
                await c.put(k, "v")
            assert (await c.delete("b", prev_kv=True)).prev_kvs[0].key == b"b"
            assert (await c.delete("b")).deleted == 0
            assert (await c.delete_range("a/", prefix=True)).deleted == 2
            assert await c.get("a/1") is None

    run(scenario)


def test_txn_builder_sends_compares_and_branches() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster) as c:
            r = await (c.txn().if_(Cmp.version("lock") == 0)
                       .then(Op.put("lock", "me"), Op.get("lock"))
                       .else_(Op.get("lock")).commit())
            assert r.succeeded and len(r.responses) == 2
            r2 = await (c.txn().if_(Cmp.value("lock") == "you")
                        .then(Op.delete("lock")).else_(Op.get("lock")).commit())
            assert not r2.succeeded
            got = r2.responses[0]
            assert hasattr(got, "kvs") and got.kvs[0].value == b"me"  # type: ignore[union-attr]
            r3 = await c.txn().if_(Cmp.mod("lock") > 0, Cmp.create("lock") != 0).then(
                Op.delete("lock", prev_kv=True)).commit()
            assert r3.succeeded
        with pytest.raises(TypeError):
            _ = Cmp.version("k") == "not an int"

    run(scenario)


def test_cluster_methods() -> None:
    async def scenario(cluster: FakeCluster) -> None:
        async with client(cluster, [cluster.node(2).address]) as c:
            st = await c.status()
            assert (st.id, st.role) == (1, "leader")  # "status" asks the leader
            rows = await c.cluster_status()  # discovers nodes 1 and 3 from the membership
            assert [s.id for _, s in rows] == [1, 2, 3]  # type: ignore[union-attr]
            assert [m.id for m in await c.members()] == [1, 2, 3]
            cluster.node(1).behaviour.conf_busy = 2  # "pending" twice, then accepted
            members = await c.add_member(4, "127.0.0.1:1", learner=True)
            assert [(m.id, m.learner) for m in members][-1] == (4, True)
            assert [m.learner for m in await c.promote_member(4)] == [False] * 4
            assert [m.id for m in await c.remove_member(4)] == [1, 2, 3]
            with pytest.raises(InvalidConfChange, match="already a member"):
                await c.add_member(2, "127.0.0.1:2")
            cluster.node(1).behaviour.conf_busy = 10**6
            with pytest.raises(ConfChangeInProgress, match="not applied yet"):
                await c.remove_member(3, timeout=0.3)
            assert await c.transfer_leadership(3) == 3
            await c.put("k", "v")
            assert c.leader == cluster.node(3).address
            assert (await c.snapshot()).index == 7

    run(scenario)


def test_save_snapshot_checks_every_chunk(tmp_path: Path) -> None:
    async def scenario(cluster: FakeCluster) -> None:
        seen: list[tuple[int, int]] = []
        async with client(cluster) as c:
            info = await c.save_snapshot(tmp_path / "s.snap",
                                         progress=lambda a, b: seen.append((a, b)))
            data = cluster.node(1).snapshot_file
            assert (tmp_path / "s.snap").read_bytes() == data
            assert (info.index, info.term, info.size_bytes) == (7, 2, len(data))
            assert seen[-1] == (len(data), len(data)) and len(seen) > 1
            cluster.node(2).corrupt_snapshot = True
            with pytest.raises(SnapshotTransferError, match="checksum"):
                await c.save_snapshot(tmp_path / "t.snap", endpoint=cluster.node(2).address)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.snap"]

    run(scenario)


def test_bad_endpoints_are_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="host:port"):
        Client(["localhost"])
    with pytest.raises(ValueError, match="at least one endpoint"):
        Client("")
