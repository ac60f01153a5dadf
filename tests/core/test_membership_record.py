"""The membership record: a node that joins later learns the membership by replaying the
log, even when the first leader's record was overwritten before it committed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kvraft.core.membership import next_conf_state
from kvraft.core.membership_record import record
from kvraft.core.types import (
    AppendEntries,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    decode_conf_change,
    encode_conf_change,
)
from tests.core.harness import Cluster

ADD_VOTER = ConfChangeType.ADD_VOTER


def conf_changes(c: Cluster, nid: int) -> list[tuple[int, ConfChangeType, int]]:
    """(index, type, node) of every CONF_CHANGE entry ``nid`` has persisted."""
    out = []
    for e in c.nodes[nid].store.ents:
        if e.type is EntryType.CONF_CHANGE:
            cc = decode_conf_change(e.data)
            out.append((e.index, cc.type, cc.node_id))
    return out


def first_leader_gets_only(c: Cluster, count: int) -> None:
    """Node 1 wins the first election; of its entries only the first ``count`` reach node
    2 and none reach node 3."""

    def cut(m: Message) -> bool | Message:
        if isinstance(m, AppendEntries) and m.src == 1:
            if m.dst == 3 or m.prev_index > 0:
                return True
            return replace(m, entries=m.entries[:count])
        return False

    c[1].campaign()
    c.stabilize(drop=cut)
    c.tick([1])  # a heartbeat tells node 2 what is committed
    c.stabilize(drop=cut)


def add_node_4(c: Cluster, leader: int) -> None:
    c.run(1)  # the leader commits an entry of its term first
    c[leader].propose_conf_change(ConfChange(ADD_VOTER, 4))
    c.run(3)


def test_a_new_leader_rewrites_a_record_that_was_overwritten() -> None:
    c = Cluster(3, extra=[4], pre_vote=False)
    first_leader_gets_only(c, 1)
    assert conf_changes(c, 1) == [(i, ADD_VOTER, i - 1) for i in (2, 3, 4)]
    assert c.log_terms(2) == [(1, 1)] and c.log_terms(3) == []
    c.crash(1)
    c.expire_leader()
    c.elect(2)  # over a log holding only node 1's no-op: node 1's record is lost
    assert conf_changes(c, 2) == [(3, ADD_VOTER, 1), (4, ADD_VOTER, 2), (5, ADD_VOTER, 3)]
    add_node_4(c, 2)
    assert c[4].commit == c[2].commit and c[4].applied == c[2].applied
    assert c[4].conf_state == c[2].conf_state == ConfState(voters=frozenset({1, 2, 3, 4}))


def test_a_leader_whose_log_holds_the_record_adds_nothing() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.stabilize()
    last = c[1].last_index
    c.expire_leader()
    c.elect(2)
    assert c[2].last_index == last + 1, "only the no-op"
    assert conf_changes(c, 2) == [(i, ADD_VOTER, i - 1) for i in (2, 3, 4)]


def test_a_log_bootstrapped_with_committed_entries_needs_no_record() -> None:
    """As the server bootstraps: the same committed ADD_VOTER entries at term 1 on every
    initial member."""
    c = Cluster(3, extra=[4])
    boot = [
        Entry(1, i, EntryType.CONF_CHANGE, encode_conf_change(ConfChange(ADD_VOTER, i)))
        for i in (1, 2, 3)
    ]
    for nid in (1, 2, 3):
        c.nodes[nid].store.save(entries=boot, hard_state=HardState(term=1, commit=3))
        c.restart(nid)
    c.expire_leader()  # restarted nodes wait one election timeout before voting
    c.elect(1)
    assert c[1].last_index == 4 and c.log_terms(1) == [(1, 1), (2, 1), (3, 1), (4, 2)]
    add_node_4(c, 1)
    assert c[4].conf_state.voters == {1, 2, 3, 4}


def test_a_partial_record_is_completed_not_repeated() -> None:
    c = Cluster(3, extra=[4], pre_vote=False)
    first_leader_gets_only(c, 2)
    c.crash(1)
    c.expire_leader()
    c.elect(2)
    # node 2 holds (2, ADD_VOTER 1) from node 1; it adds only what is missing
    assert conf_changes(c, 2) == [(2, ADD_VOTER, 1), (4, ADD_VOTER, 2), (5, ADD_VOTER, 3)]
    add_node_4(c, 2)
    assert c[4].conf_state.voters == {1, 2, 3, 4}


def test_a_compacted_log_needs_no_record() -> None:
    """A node that lacks a compacted prefix gets the snapshot, which carries the
    membership: a leader whose log starts after a snapshot adds no record."""
    c = Cluster(3, extra=[4], pre_vote=False)
    first_leader_gets_only(c, 1)
    assert c[2].applied == 1
    c.take_snapshot(2)
    c.crash(1)
    c.expire_leader()
    c.elect(2)
    assert c[2].last_index == 2, "only the no-op after the snapshot"
    add_node_4(c, 2)
    assert c[4].conf_state.voters == {1, 2, 3, 4}


def cs(voters: set[int], learners: set[int] | None = None) -> ConfState:
    return ConfState(voters=frozenset(voters), learners=frozenset(learners or ()))


@pytest.mark.parametrize(
    ("replayed", "target"),
    [
        (ConfState(), cs({1, 2}, {3})),
        (cs({3}), cs({1}, {3})),  # the only replayed voter becomes a learner
        (cs({1, 5}, {2}), cs({2})),  # a learner promoted, the others removed
    ],
)
def test_record_takes_the_replayed_membership_to_the_target(
    replayed: ConfState, target: ConfState
) -> None:
    state = replayed
    for cc in record(replayed, target):
        state = next_conf_state(state, cc)
    gone = replayed.all_nodes() - target.all_nodes()
    assert state == ConfState(target.voters, target.learners, removed=frozenset(gone))
