"""Minimal replays of what the simulator found, written as scripts over ``Cluster``.

Each test drives the cluster step by step (which message goes where, who crashes when)
so the finding replays without a random schedule.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kvraft.core.types import AppendEntries, ConfChangeType, Message, Role
from tests.sim.cluster import Cluster, SimOptions
from tests.sim.liveness import converge, pump


def settle(c: Cluster) -> None:
    """Process every Ready and deliver every message (no loss) until quiet."""
    pump(c, random.Random(0))


def deliver_all(c: Cluster, which: Callable[[Message], bool] = lambda m: True) -> None:
    """Deliver, in send order, every in-flight message ``which`` selects (but those a
    stalled link holds)."""
    i = 0
    while i < len(c.net.inflight):
        if which(c.net.inflight[i].msg) and not c.net.waits(i):
            c.deliver(i)
        else:
            i += 1


def elect(c: Cluster, node: int) -> None:
    c.campaign(node)
    settle(c)
    assert c.nodes[node].raw is not None and c.nodes[node].raw.role == Role.LEADER


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


def test_a_voter_that_never_caught_up_still_answers_vote_requests() -> None:
    """Seed 770 (3 nodes, 600 steps): node 4 was added as a voter but never received the
    log (its own membership is empty, so it cannot campaign). It resets its election
    timer at every timeout like a campaigning node, so with a timeout equal to
    election_ticks it always believed in the old leader (check-quorum stickiness) and
    ignored every vote request: the other voter could never win. Fixed in Raft.tick."""
    for seed in range(20):
        c = Cluster(SimOptions(nodes=1, election_ticks=5, pre_vote=False), seed=seed)
        elect(c, 1)
        c.tick_all()
        settle(c)
        assert "proposed" in c.conf_change(1, ConfChangeType.ADD_VOTER, 2)
        c.cut_one_way(2, 1)  # node 2's answers are lost: the leader loses its quorum
        for _ in range(12):
            c.tick_all()
            c.drain(1)
            # node 2 hears heartbeats (it learns the leader) but no log entries
            deliver_all(c, lambda m: not isinstance(m, AppendEntries))
            c.net.inflight.clear()
            c.drain(2)
        n1 = c.nodes[1].raw
        assert n1 is not None and n1.role != Role.LEADER
        assert c.nodes[2].disk.store.last_index() == 0
        converge(c, random.Random(seed))


def test_a_leader_that_demotes_itself_hands_over_first() -> None:
    c = Cluster(
        SimOptions(nodes=2, max_entries_per_msg=1, max_inflight_msgs=1, pre_vote=False),
        seed=1,
    )
    elect(c, 1)
    c.tick_all()
    settle(c)
    assert "proposed" in c.conf_change(1, ConfChangeType.ADD_LEARNER, 1)
    c.propose(1)  # one more entry behind the demotion
    c.drain(1)
    # The demotion (and nothing after it) reaches node 2 and is acknowledged.
    deliver_all(c, lambda m: isinstance(m, AppendEntries) and m.dst == 2)
    c.net.inflight.clear()
    c.drain(2)
    deliver_all(c)
    c.drain(1)  # node 1 commits and applies its demotion
    c.net.inflight.clear()
    n1, n2 = c.nodes[1].raw, c.nodes[2].raw
    assert n1 is not None and n1.role == Role.LEARNER
    assert n2 is not None and n2.last_index < n1.last_index
    converge(c, random.Random(1))


def test_lease_read_after_a_follower_restart_sees_a_newer_leaders_writes() -> None:
    """Found while checking lease reads: leader 1 holds a lease acknowledged by node 2;
    node 2 restarts at once (forgetting the leader) and votes for node 3, which has been
    cut off from node 1 long enough to campaign; node 3 commits a write; node 1, within
    its lease, answered a lease read with an index below that write. Fixed in
    Raft._in_lease: a restarted node waits one election timeout before it votes."""
    c = Cluster(SimOptions(nodes=3, max_delay_ticks=2), seed=3)
    elect(c, 1)
    c.propose(1)
    for _ in range(3):
        c.tick_all()
        settle(c)
    c.partition([[1, 2], [3, 4]])
    for _ in range(12):  # node 1 keeps its lease through node 2; node 3 times out
        c.tick_all()
        settle(c)
    c.crash(2)
    c.restart(2)
    c.heal()
    c.partition([[1], [2, 3, 4]])
    c.campaign(3)
    settle(c)
    c.propose(3)
    settle(c)
    c.read_index(1, lease=True)
    settle(c)  # the read is answered (or dropped); the checker compares its index
    assert c.reads.done == {1: "answered"}


def test_late_heartbeat_answers_do_not_extend_a_deposed_leaders_lease() -> None:
    """Leader 1's streams go down (stall) just after nodes 2 and 3 answered a heartbeat
    round; their answers wait in a queue. The queue drains 7 ticks later (the streams
    come back for a moment): node 1, which has not heard of anything else, still leads.
    Nodes 2 and 3 elect node 2, which commits. Counting its lease from when those
    answers arrived, node 1 answered a lease read with an index below node 2's commit.
    Fixed in Raft.lease_valid: the lease runs from when the answered round was sent."""
    c = Cluster(SimOptions(nodes=3, no_drift=True), seed=1)
    elect(c, 1)
    c.propose(1)
    settle(c)
    c.tick_all()
    c.drain(1)  # the round's heartbeats ...
    deliver_all(c, lambda m: m.src == 1)
    c.drain(2)
    c.drain(3)  # ... answered; the answers are on the wire
    c.stall(1)
    for _ in range(7):
        c.tick_all()
        settle(c)
    assert c.release(1, inbound=True) == "release 2 into n1"
    settle(c)
    for _ in range(3):
        c.tick_all()
        settle(c)
    n1, n2 = c.nodes[1].raw, c.nodes[2].raw
    if n2 is not None and n2.role != Role.LEADER:
        c.campaign(2)  # past its election timeout: nodes 2 and 3 no longer wait for 1
        settle(c)
    c.propose(2)
    settle(c)
    assert n1 is not None and n1.role == Role.LEADER and n2 is not None and n2.commit > n1.commit
    c.read_index(1, lease=True)  # the checker fails the read if it is answered below
    settle(c)
    assert c.reads.done == {}, "not answered: no lease, and no quorum for a round"
