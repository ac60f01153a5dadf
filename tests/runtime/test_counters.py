"""The driver's counters for metrics: what an operator reads from /metrics must follow
what clients and peers observe (proposals that succeed or fail, reads, leader changes)."""

from __future__ import annotations

import asyncio

import pytest

from kvraft.core.types import Role
from kvraft.errors import NotLeader
from kvraft.runtime.errors import OutcomeUnknown, Overloaded
from kvraft.runtime.histogram import Histogram

from .test_driver import Rig, run, until


def test_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    h = Histogram((0.001, 0.01, 0.1))
    for v in (0.0005, 0.001, 0.002, 0.05, 3.0):
        h.observe(v)
    buckets, count, total = h.cumulative()
    assert buckets == [(0.001, 2), (0.01, 3), (0.1, 4), (float("inf"), 5)]
    assert count == 5
    assert total == pytest.approx(3.0535)
    with pytest.raises(ValueError):
        Histogram(())


def test_proposal_counters_follow_outcomes() -> None:
    async def t(rig: Rig) -> None:
        d = rig.driver
        await d.propose(b"a=1")
        await d.propose(b"b=2")
        c = d.counters()
        assert (c["proposals_succeeded"], c["proposals_failed"], c["proposals_pending"]) == (
            2, 0, 0)
        rig.log.gate.clear()  # hold the next write: the proposal stays pending
        pending = asyncio.ensure_future(d.propose(b"c=3"))
        await until(lambda: d.counters()["proposals_pending"] == 1)
        rig.node.become(Role.FOLLOWER, 2, 2)  # leadership lost before it applied
        rig.log.gate.set()
        with pytest.raises(OutcomeUnknown):
            await pending
        with pytest.raises(NotLeader):  # refused by the core: counted as failed too
            await d.propose(b"d=4")
        c = d.counters()
        assert (c["proposals_succeeded"], c["proposals_failed"], c["proposals_pending"]) == (
            2, 2, 0)

    run(t)


def test_overloaded_proposals_are_counted() -> None:
    async def t(rig: Rig) -> None:
        d = rig.driver
        rig.log.gate.clear()
        first = asyncio.ensure_future(d.propose(b"a=1"))
        await until(lambda: d.counters()["proposals_pending"] == 1)
        with pytest.raises(Overloaded):
            await d.propose(b"b=2")
        assert d.counters()["proposals_overloaded"] == 1
        rig.log.gate.set()
        await first

    run(t, max_inflight_proposals=1)


def test_reads_leader_changes_and_read_latency() -> None:
    async def t(rig: Rig) -> None:
        d = rig.driver
        await d.propose(b"a=1")
        for _ in range(3):
            await d.read_index()
        c = d.counters()
        assert (c["reads_requested"], c["reads_failed"], c["reads_pending"]) == (3, 0, 0)
        # one read at a time is timed (a sample); at least one of these three was
        await until(lambda: d.read_latency.cumulative()[1] >= 1)
        assert d.read_latency.cumulative()[1] <= 3
        rig.node.become(Role.FOLLOWER, 2, 2)
        await until(lambda: d.leader == 2)
        with pytest.raises(NotLeader):
            await d.read_index()
        assert d.counters()["reads_failed"] == 1
        assert d.stats.leader_changes == 1  # leader 1 (at start) -> 2
        rig.node.become(Role.CANDIDATE, 3, 0)  # no leader: not a leader change
        await until(lambda: d.leader == 0)
        rig.node.become(Role.LEADER, 4, 1)
        await until(lambda: d.leader == 1)
        assert d.stats.leader_changes == 2

    run(t)
