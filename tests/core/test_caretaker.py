"""A leader that removes or demotes itself steps down at once; if no remaining voter holds
its whole log and the others need its vote, it takes over again as a *caretaker*: it
leads without counting itself, refuses proposals, brings a voter up to date and hands
leadership over."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest

from kvraft.core.types import (
    AppendEntries,
    ConfChange,
    ConfChangeType,
    EntryType,
    Message,
    RequestVote,
    Role,
)
from kvraft.errors import TransferInProgress
from tests.core.harness import Cluster, Filter, start_recording

ADD_LEARNER = ConfChangeType.ADD_LEARNER
REMOVE = ConfChangeType.REMOVE_NODE


def entries_up_to(index: int) -> Callable[[Message], bool | Message]:
    """Network filter: node 1's AppendEntries carry no entry beyond ``index``."""

    def cut(m: Message) -> bool | Message:
        if isinstance(m, AppendEntries) and m.src == 1:
            return replace(m, entries=tuple(e for e in m.entries if e.index <= index))
        return False

    return cut


def leave_with_an_entry_no_voter_holds(c: Cluster, kind: ConfChangeType) -> None:
    """Node 1 leads. It removes or demotes itself with one more entry ("behind") after
    that; the others get the change but not the entry; node 1 commits and applies the
    change and steps down; what it sends last is lost."""
    c.elect(1)
    c.run(1)
    change = c[1].propose_conf_change(ConfChange(kind, 1))
    c.propose(1, "behind")
    c.stabilize(drop=entries_up_to(change))
    c.network.clear()
    assert c[1].role is not Role.LEADER and 1 not in c[1].conf_state.voters
    assert c[2].last_index == change


def to_2(m: Message) -> bool:
    return isinstance(m, AppendEntries) and m.src == 1 and m.dst == 2


def tick_until(c: Cluster, done: Callable[[], bool], drop: Filter | None = None) -> None:
    for _ in range(100):
        c.tick()
        c.stabilize(drop)
        if done():
            return
    raise AssertionError("condition not reached within 100 ticks")


@pytest.mark.parametrize("kind", [ADD_LEARNER, REMOVE])
def test_the_leaving_leader_takes_over_and_hands_over(kind: ConfChangeType) -> None:
    c = Cluster(2, pre_vote=False)
    leave_with_an_entry_no_voter_holds(c, kind)
    # node 2 campaigns; node 1 refuses (longer log) and campaigns itself; its appends
    # are held back so that it stays in charge for a while
    tick_until(c, lambda: c[1].role is Role.LEADER, drop=to_2)
    assert c[1].conf_state.voters == {2}, "a caretaker: leader but not a voter"
    assert c[1].commit < c[1].last_index, "it never counts itself"
    with pytest.raises(TransferInProgress) as refused:
        c.propose(1, "refused")
    assert refused.value.leader_id == 2
    start_recording(c)
    c.tick([1])  # a heartbeat: node 2 answers and is brought up to date
    c.stabilize()
    text = c.transcript()
    assert "send 1->2 TimeoutNow" in text, "handed over"
    assert re.search(r"1: soft (learner|follower) leader=0", text), "and stepped down"
    assert c.leader() == 2
    c.propose(2, "after")
    c.stabilize()
    assert c.applied_data(2) == ["behind", "after"]
    assert c[2].conf_state.voters == {2}


def test_a_removed_leader_takes_over_after_a_restart_too() -> None:
    c = Cluster(2, pre_vote=False)
    leave_with_an_entry_no_voter_holds(c, REMOVE)
    c.crash(1)
    c.restart(1)  # its membership no longer names it; its log shows it was removed
    tick_until(c, lambda: c.leaders() == [2])
    c.propose(2, "after")
    c.stabilize()
    assert c.applied_data(2) == ["behind", "after"]


def test_a_caretaker_needs_a_quorum_of_the_voters_without_itself() -> None:
    c = Cluster(3, pre_vote=False)
    c.isolate(3)
    leave_with_an_entry_no_voter_holds(c, ADD_LEARNER)
    c.run(60)
    # node 2 needs node 1's vote, node 1 (a caretaker) needs node 3's: nobody leads
    assert c.leaders() == [] and c[2].commit < c[1].last_index
    c.heal()
    c.run(60)
    leader = c.leader()
    assert leader in (2, 3)
    c.propose(leader, "after")
    c.stabilize()
    assert c.applied_data(1)[-1:] == c.applied_data(2)[-1:] == c.applied_data(3)[-1:] == [
        "after"
    ]


def test_a_caretaker_never_counts_itself() -> None:
    c = Cluster(3, pre_vote=False)
    leave_with_an_entry_no_voter_holds(c, ADD_LEARNER)

    def appends_from_1(m: Message) -> bool:
        return isinstance(m, AppendEntries) and m.src == 1

    tick_until(c, lambda: c[1].role is Role.LEADER, drop=appends_from_1)
    term, no_op = c[1].term, c[1].last_index
    sent: list[AppendEntries] = []

    def to_2_only(m: Message) -> bool:
        if isinstance(m, AppendEntries) and m.src == 1:
            sent.append(m)
            return m.dst == 3
        return False

    c.tick([1])
    c.stabilize(drop=to_2_only)  # node 2 catches up: node 1 hands over to it
    assert c[1].role is not Role.LEADER and c[2].term > term
    assert [m for m in sent if m.term == term and m.dst == 2]
    assert all(m.commit < no_op for m in sent if m.term == term), "{1, 2} is no quorum"


def test_a_joining_node_replaying_the_record_never_takes_over() -> None:
    """A node added later holds, while it replays the membership record, passing subsets
    of the membership (here voters {1}); it must not campaign with one."""
    c = Cluster(3, extra=[4], pre_vote=False)
    c.elect(1)
    record = [e for e in c.nodes[1].store.ents][:2]  # the no-op, ADD_VOTER 1
    assert record[1].type is EntryType.CONF_CHANGE
    c[4].step(AppendEntries(1, 4, c[1].term, 0, 0, tuple(record), 2))
    while c.process(4):  # persist, then apply
        pass
    c.network.clear()
    assert c[4].conf_state.voters == {1}
    c.tick([4], n=20)  # it no longer believes in leader 1
    c[4].step(RequestVote(2, 4, c[1].term + 1, 0, 0))  # a candidate with an empty log
    c.process(4)
    assert c[4].role is Role.FOLLOWER
    assert not any(isinstance(m, RequestVote) for m in c.network), "it did not campaign"
