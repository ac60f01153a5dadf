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
