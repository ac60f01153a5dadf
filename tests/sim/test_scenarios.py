"""Minimal replays of what the simulator found, written as scripts over ``Cluster``.

Each test drives the cluster step by step (which message goes where, who crashes when)
so the finding replays without a random schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from kvraft.core.types import AppendEntries, ConfChangeType, Message, Role
from tests.sim.cluster import Cluster, SimOptions
from tests.sim.liveness import pump


def settle(c: Cluster) -> None:
    """Process every Ready and deliver every message (no loss) until quiet."""
    pump(c, random.Random(0))


def deliver_all(c: Cluster, which: Callable[[Message], bool] = lambda m: True) -> None:
    """Deliver, in send order, every in-flight message ``which`` selects."""
    i = 0
    while i < len(c.net.inflight):
        if which(c.net.inflight[i].msg):
            c.deliver(i)
        else:
            i += 1


def elect(c: Cluster, node: int) -> None:
    c.campaign(node)
    settle(c)
    assert c.nodes[node].raw is not None and c.nodes[node].raw.role == Role.LEADER


@pytest.mark.xfail(
    strict=True,
    reason="core bug (sim seed 668): the first leader writes the bootstrap membership "
    "only if its log is empty; if it loses leadership before those entries commit, they "
    "are overwritten and a node added later, replaying the log from index 1, ends up "
    "with the wrong membership (here voters {4}) and can elect itself alone",
)
def test_a_node_added_later_learns_the_bootstrap_membership() -> None:
    c = Cluster(
        SimOptions(nodes=3, pre_vote=False, check_quorum=False, max_entries_per_msg=1),
        seed=1,
    )
    # Node 1 wins term 1 and appends its no-op and the bootstrap membership entries.
    c.campaign(1)
    c.drain(1)
    deliver_all(c)
    c.drain(2)
    c.drain(3)
    deliver_all(c)
    c.drain(1)
    assert c.nodes[1].raw is not None and c.nodes[1].raw.role == Role.LEADER
    # Only the first entry (the no-op) reaches node 2; node 1 crashes with the rest.
    deliver_all(c, lambda m: isinstance(m, AppendEntries) and m.dst == 2)
    c.drain(2)
    assert c.nodes[2].disk.store.last_index() == 1
    c.crash(1)
    c.net.inflight.clear()
    # Node 2 wins term 2 over a log holding only (1, term 1), then adds node 4.
    elect(c, 2)
    c.tick_all()
    settle(c)
    assert "proposed" in c.conf_change(2, ConfChangeType.ADD_VOTER, 4)
    for _ in range(5):
        c.tick_all()
        settle(c)
    n4 = c.nodes[4].raw
    assert n4 is not None and n4.applied >= 3  # caught up by replaying the log
    assert n4.conf_state.voters == {1, 2, 3, 4}


def test_snapshot_taken_between_apply_and_advance_then_campaign() -> None:
    """Seed 817 (3 nodes, 600 steps): the state machine snapshots and compacts the log
    after applying a Ready's entries but before advance(); the core's applied index is
    then below the log's first index, and campaigning read the compacted entries
    (Compacted raised out of tick/campaign). Fixed in Raft._has_unapplied_conf_change."""
    c = Cluster(SimOptions(nodes=3), seed=1)
    elect(c, 1)
    c.propose(1)
    c.tick_all()
    c.drain(1)
    deliver_all(c)  # appends reach the followers
    c.drain(2)
    c.drain(3)
    deliver_all(c)  # acks reach the leader: it commits
    c.drain(1)
    deliver_all(c)  # the new commit index reaches node 2
    n2 = c.nodes[2]
    for _ in range(3):  # take, persist, send
        c.step_ready(2)
    assert n2.pending is not None and n2.pending.committed_entries
    c.step_ready(2)  # apply
    assert n2.raw is not None and n2.raw.applied < len(n2.disk.applied)
    assert c.snapshot(2).startswith("snapshot at")
    c.campaign(2)  # must not read below the log's first index
    settle(c)
    c.observe()
