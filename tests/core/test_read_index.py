"""ReadIndex and lease reads."""

from __future__ import annotations

import pytest

from kvraft.core.types import AppendEntries, Heartbeat, HeartbeatResponse, Message, ReadState
from kvraft.errors import NotLeader
from tests.core.harness import Cluster, start_recording


def test_read_index_needs_a_quorum_heartbeat_round() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    start_recording(c)
    c[1].read_index(7)
    c.stabilize()
    text = c.transcript()
    commit = c[1].commit
    assert f"send 1->2 Heartbeat t1 commit={commit} ctx=1" in text
    assert "send 2->1 HeartbeatResp t1 ctx=1" in text
    assert c.nodes[1].reads == [ReadState(7, commit)]


def test_reads_between_readies_share_one_heartbeat_round() -> None:
    c = Cluster(3)
    c.elect(1)
    for rid in range(100):
        c[1].read_index(rid)
    rd = c.process(1)
    assert rd is not None
    assert [type(m) for m in rd.messages] == [Heartbeat, Heartbeat]
    c.stabilize()
    assert [r.request_id for r in c.nodes[1].reads] == list(range(100))


def test_isolated_leader_cannot_answer_and_drops_reads_when_it_steps_down() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    c[1].read_index(1)
    c.run(5)
    assert c.nodes[1].reads == [], "no quorum confirmed leadership"
    c.run(10)
    assert c.nodes[1].dropped == [1], "the core will never answer it"


def test_new_leader_answers_reads_only_after_committing_in_its_term() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    c.expire_leader()

    def no_appends_from_2(m: Message) -> bool:
        return m.src == 2 and isinstance(m, AppendEntries)

    c[2].campaign()
    c.stabilize(drop=no_appends_from_2)
    assert c[2].status()["role"] == "leader" and c[2].commit < c[2].last_index
    c[2].read_index(9)
    c.run(2, drop=no_appends_from_2)
    assert c.nodes[2].reads == [], "the no-op of its term is not committed yet"
    c.run(2)
    assert c.nodes[2].reads == [ReadState(9, c[2].commit)]


def test_read_index_after_a_leader_change() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    c[1].read_index(1)
    c.process(1)
    c.isolate(1)
    c.run(40)  # node 1 steps down; 2 or 3 takes over and commits more
    new = c.leader()
    c.propose(new, "b")
    c.stabilize()
    assert c.nodes[1].dropped == [1] and c.nodes[1].reads == []
    with pytest.raises(NotLeader) as err:
        c[1].read_index(2)
    assert err.value.leader_id in (0, new)
    c[new].read_index(3)
    c.stabilize()
    (rs,) = c.nodes[new].reads
    assert rs.request_id == 3 and rs.index == c[new].commit >= 4, "covers b and the no-op"


def test_heartbeat_responses_from_an_old_term_confirm_nothing() -> None:
    c = Cluster(3)
    c.elect(1)
    old = c[1].term
    c.expire_leader()
    c.elect(1)  # same node, new term; its context counter does not restart
    c[1].read_index(5)
    c.process(1)
    ctxs = [m.context for m in c.network if isinstance(m, Heartbeat)]
    c.network.clear()
    for ctx in range(1, max(ctxs) + 1):  # replayed answers of the previous term
        c[1].step(HeartbeatResponse(2, 1, old, ctx))
        c[1].step(HeartbeatResponse(3, 1, old, ctx))
    c.process(1)
    assert c.nodes[1].reads == []


def test_lease_read_skips_the_heartbeat_round_while_the_lease_holds() -> None:
    c = Cluster(3)
    c.elect(1)
    c.run(1)  # a heartbeat round acknowledged
    c[1].read_index(1, lease=True)
    rd = c.process(1)
    assert rd is not None and rd.read_states == (ReadState(1, c[1].commit),)
    assert not any(isinstance(m, Heartbeat) for m in rd.messages)


def test_lease_expires_without_acknowledgements() -> None:
    c = Cluster(3, election_ticks=10, lease_ticks=4)
    c.elect(1)
    c.run(1)

    def drop_acks(m: Message) -> bool:
        return m.dst == 1

    c.run(4, drop=drop_acks)
    c[1].read_index(1, lease=True)
    c.stabilize(drop=drop_acks)
    assert c.nodes[1].reads == [], "lease over: falls back to a heartbeat round"
    c.run(1)
    assert [r.request_id for r in c.nodes[1].reads] == [1]


def test_lease_reads_require_check_quorum() -> None:
    c = Cluster(3, check_quorum=False)
    c.elect(1)
    with pytest.raises(ValueError, match="check_quorum"):
        c[1].read_index(1, lease=True)


def test_single_node_reads_at_once() -> None:
    c = Cluster(1)
    c.elect(1)
    c[1].read_index(4)
    c.stabilize()
    assert c.nodes[1].reads == [ReadState(4, c[1].commit)]



# ---------------------------------------------------------------- lease from send time
def _late_answers_to_one_round(c: Cluster) -> list[Message]:
    """Tick every node once: node 1 (the leader) sends a heartbeat round and the
    followers answer it, but their answers are held back (say, queued while a stream was
    down) and returned instead of delivered."""
    held: list[Message] = []

    def hold(m: Message) -> bool:
        if m.dst == 1 and isinstance(m, HeartbeatResponse):
            held.append(m)
            return True
        return False

    c.tick()
    c.stabilize(drop=hold)
    assert len(held) == 2
    return held


def test_a_late_ack_does_not_extend_a_deposed_leaders_lease() -> None:
    c = Cluster(3, election_ticks=10)  # lease: 8 ticks
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    late = _late_answers_to_one_round(c)  # the followers last heard node 1 now
    c.isolate(1)
    for _ in range(7):
        c.tick()
        c.stabilize()
    for m in late:  # 7 ticks late; node 1 is still leader (check-quorum: 10 ticks)
        c[1].step(m)
    for _ in range(3):
        c.tick()
        c.stabilize()
    if 1 in c.leaders() and not set(c.leaders()) - {1}:
        c[2].campaign()  # nodes 2 and 3 are past their election timeout: no stickiness
        c.stabilize()
    (new,) = set(c.leaders()) - {1}
    c.propose(new, "b")
    c.stabilize()
    assert 1 in c.leaders(), "node 1 does not know it was deposed"
    start_recording(c)
    c[1].read_index(99, lease=True)
    c.process(1)
    assert c.nodes[1].reads == [], (
        f"node 1 answered from its lease at {c.nodes[1].reads} while node {new} has "
        f"committed up to {c[new].commit}"
    )
    assert "send 1->2 Heartbeat" in c.transcript(), "it asks for a heartbeat round instead"
    c.heal()
    c.run(2)
    assert c.nodes[1].dropped == [99] and c.nodes[1].reads == []


def test_the_lease_runs_from_when_the_acknowledged_round_was_sent() -> None:
    c = Cluster(3, election_ticks=10, lease_ticks=4)
    c.elect(1)
    c.stabilize()
    late = _late_answers_to_one_round(c)  # sent at tick 1
    c.isolate(1)
    c.tick([1], n=2)
    for m in late:  # arrive 2 ticks after the round left
        c[1].step(m)
    c[1].read_index(1, lease=True)
    c.process(1)
    assert [r.request_id for r in c.nodes[1].reads] == [1], "2 ticks after the round left"
    c.tick([1], n=2)
    c[1].read_index(2, lease=True)
    c.process(1)
    assert [r.request_id for r in c.nodes[1].reads] == [1], (
        "4 ticks after the round left the lease is over, although its acks came 2 ticks ago"
    )


def test_a_read_is_confirmed_only_by_rounds_sent_after_it_arrived() -> None:
    c = Cluster(3)
    c.elect(1)
    c.stabilize()
    late = _late_answers_to_one_round(c)
    c[1].read_index(5)
    c.process(1)
    c.network.clear()  # the read's own round is lost
    for m in late:  # answers to the round before the read
        c[1].step(m)
    c.process(1)
    assert c.nodes[1].reads == []
    c.run(1)  # the next periodic round confirms it
    assert c.nodes[1].reads == [ReadState(5, c[1].commit)]
