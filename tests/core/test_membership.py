"""Membership: learners, promotion, one change at a time, removing the leader."""

from __future__ import annotations

import pytest

from kvraft.core.types import ConfChange, ConfChangeType, Role
from kvraft.errors import ConfChangeInProgress, InvalidConfChange
from tests.core.harness import Cluster, start_recording

ADD_VOTER = ConfChangeType.ADD_VOTER
ADD_LEARNER = ConfChangeType.ADD_LEARNER
REMOVE = ConfChangeType.REMOVE_NODE


def change(c: Cluster, leader: int, kind: ConfChangeType, node: int) -> None:
    c[leader].propose_conf_change(ConfChange(kind, node))
    c.stabilize()


def test_learner_receives_the_log_but_never_counts_for_commit() -> None:
    c = Cluster(3, learners=[4])
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    assert c.applied_data(4) == ["a"]
    c.isolate(2)
    c.isolate(3)
    c.propose(1, "b")
    c.stabilize()
    assert c[4].last_index == c[1].last_index, "the learner holds it"
    assert c[1].commit < c[1].last_index, "leader + learner is not a quorum of 3 voters"


def test_learner_never_votes_for_anyone_in_tallies() -> None:
    c = Cluster(2, learners=[3])
    c.elect(1)
    c.isolate(2)
    c.run(30)
    assert c[1].role is not Role.LEADER, "node 1 alone (with a learner) is no quorum of 2"
    assert c[3].role is Role.LEARNER


def test_add_a_learner_then_promote_it() -> None:
    c = Cluster(3, extra=[4])
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    change(c, 1, ADD_LEARNER, 4)
    assert c[1].conf_state.learners == {4}
    assert c.applied_data(4) == ["a"] and c[4].role is Role.LEARNER
    change(c, 1, ADD_VOTER, 4)
    assert c[1].conf_state.voters == {1, 2, 3, 4} and c[4].conf_state.voters == {1, 2, 3, 4}
    assert c[4].role is Role.FOLLOWER
    c.isolate(2)
    c.isolate(3)
    c.propose(1, "b")
    c.stabilize()
    assert c[1].commit < c[1].last_index, "4 voters now: 1 and 4 are no quorum"
    c.heal()
    c.run(2)
    assert c.applied_data(4) == ["a", "b"]
    c.isolate(1)
    c.run(40)
    assert c.leader() in (2, 3, 4), "the promoted node takes part in elections"


def test_one_change_at_a_time() -> None:
    c = Cluster(3, extra=[4, 5])
    c.elect(1)
    c[1].propose_conf_change(ConfChange(ADD_LEARNER, 4))
    with pytest.raises(ConfChangeInProgress):
        c[1].propose_conf_change(ConfChange(ADD_LEARNER, 5))
    c.stabilize()
    c[1].propose_conf_change(ConfChange(ADD_LEARNER, 5))
    c.stabilize()
    assert c[1].conf_state.learners == {4, 5}


def test_new_leader_changes_membership_only_after_committing_in_its_term() -> None:
    c = Cluster(3, extra=[4])
    c.elect(1)
    c.expire_leader()
    c[2].campaign()
    c.stabilize(drop=lambda m: m.src == 2 and type(m).__name__ == "AppendEntries")
    assert c[2].role is Role.LEADER
    with pytest.raises(ConfChangeInProgress, match="committed an entry of its term"):
        c[2].propose_conf_change(ConfChange(ADD_LEARNER, 4))
    c.run(2)
    c[2].propose_conf_change(ConfChange(ADD_LEARNER, 4))


@pytest.mark.parametrize(
    ("cc", "message"),
    [
        (ConfChange(ADD_VOTER, 2), "already a voter"),
        (ConfChange(REMOVE, 9), "not a member"),
        (ConfChange(ADD_LEARNER, 0), "positive"),
    ],
)
def test_invalid_changes_are_refused(cc: ConfChange, message: str) -> None:
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(InvalidConfChange, match=message):
        c[1].propose_conf_change(cc)


def test_cannot_remove_the_last_voter() -> None:
    c = Cluster(1)
    c.elect(1)
    with pytest.raises(InvalidConfChange, match="only voter"):
        c[1].propose_conf_change(ConfChange(REMOVE, 1))


def test_removing_a_follower_shrinks_the_quorum() -> None:
    c = Cluster(3)
    c.elect(1)
    change(c, 1, REMOVE, 3)
    c.crash(3)
    c.isolate(2)
    c.propose(1, "alone?")
    c.stabilize()
    assert c[1].commit < c[1].last_index, "2 voters: the leader alone is not a quorum"
    c.heal()
    c.run(2)
    assert c.applied_data(2) == ["alone?"]


def test_removing_the_leader() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    start_recording(c)
    change(c, 1, REMOVE, 1)
    text = c.transcript()
    assert "1: soft follower leader=0" in text, "the removed leader stepped down"
    assert "send 1->2 TimeoutNow" in text or "send 1->3 TimeoutNow" in text, "handed over"
    new = c.leader()
    assert new in (2, 3) and c[new].conf_state.voters == {2, 3}
    c.propose(new, "b")
    c.run(40)
    assert c.leader() == new, "the removed node never campaigns"
    assert c[1].term < c[new].term + 1
    assert c.applied_data(2) == c.applied_data(3) == ["a", "b"]
