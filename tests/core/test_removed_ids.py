"""Node ids are never reused: a removed id stays out of the cluster for good.

A node that came back under a removed id with an empty data dir would replay the log from
index 1 and hold old memberships on the way (voters {1}, say); as node 1, cut off from the
leader then, it could elect itself alone. So REMOVE_NODE retires the id
(``ConfState.removed``), the leader refuses to add it again, and that knowledge survives
snapshots and restarts like the rest of the membership.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kvraft.core import Config, RawNode
from kvraft.core.membership import next_conf_state
from kvraft.core.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    HardState,
    InstallSnapshot,
    Role,
    SnapshotMeta,
)
from kvraft.errors import InvalidConfChange
from kvraft.storage.base import LogStore
from tests.core.harness import Cluster
from tests.storage.conftest import KITS

ADD_VOTER = ConfChangeType.ADD_VOTER
ADD_LEARNER = ConfChangeType.ADD_LEARNER
REMOVE = ConfChangeType.REMOVE_NODE
REUSED = r"node 4 was removed from the cluster; node ids are never reused — add it under a new id"


def change(c: Cluster, leader: int, kind: ConfChangeType, node: int) -> None:
    c[leader].propose_conf_change(ConfChange(kind, node))
    c.stabilize()


def remove_node_4(c: Cluster) -> None:
    """Node 1 leads; node 4 joins as a voter, then is removed."""
    c.elect(1)
    change(c, 1, ADD_LEARNER, 4)
    change(c, 1, ADD_VOTER, 4)
    c.propose(1, "a")
    c.stabilize()
    change(c, 1, REMOVE, 4)


def test_a_removed_id_cannot_be_added_again_but_a_new_id_can() -> None:
    c = Cluster(3, extra=[4, 5])
    remove_node_4(c)
    for nid in (1, 2, 3):
        assert c[nid].conf_state == ConfState(frozenset({1, 2, 3}), removed=frozenset({4}))
    for kind in (ADD_VOTER, ADD_LEARNER):
        with pytest.raises(InvalidConfChange, match=REUSED):
            c[1].propose_conf_change(ConfChange(kind, 4))
    assert c[1].last_index == c[1].commit, "nothing was appended"
    change(c, 1, ADD_LEARNER, 5)
    change(c, 1, ADD_VOTER, 5)
    assert c[1].conf_state.voters == {1, 2, 3, 5} and c[5].conf_state.removed == {4}
    c.propose(1, "b")
    c.stabilize()
    assert c.applied_data(5) == ["a", "b"]


def test_a_committed_re_add_of_a_removed_id_changes_nothing() -> None:
    """Such an entry cannot be proposed any more, but a log may hold one; every node
    applies it the same way: as nothing."""
    gone = ConfState(voters=frozenset({1, 2}), removed=frozenset({4}))
    assert next_conf_state(gone, ConfChange(ADD_VOTER, 4)) == gone
    assert next_conf_state(gone, ConfChange(ADD_LEARNER, 4)) == gone
    c = Cluster(3, extra=[4])
    remove_node_4(c)
    before = c[2].conf_state
    assert c[2].apply_conf_change(ConfChange(ADD_VOTER, 4)) == before


def test_a_node_that_learns_the_membership_from_a_snapshot_knows_the_removed_ids() -> None:
    c = Cluster(3, extra=[4, 5])
    remove_node_4(c)
    c.take_snapshot(1)
    change(c, 1, ADD_LEARNER, 5)  # 5 starts empty behind the compacted prefix
    assert c.nodes[5].store.snapshot_meta().conf_state.removed == {4}
    change(c, 1, ADD_VOTER, 5)
    assert c[5].conf_state.removed == {4}
    c.crash(5)
    c.restart(5)
    assert c[5].conf_state.removed == {4}, "kept across a restart"
    c[1].transfer_leadership(5)
    c.stabilize()
    c.run(2)
    assert c.leader() == 5
    with pytest.raises(InvalidConfChange, match=REUSED):
        c[5].propose_conf_change(ConfChange(ADD_VOTER, 4))


@pytest.mark.parametrize("kit_name", sorted(KITS))
def test_removed_ids_survive_snapshot_install_and_restart_in_each_log_store(
    kit_name: str, tmp_path: Path
) -> None:
    """A fresh node 6 installs a snapshot whose membership retired node 3, through a real
    LogStore; after a restart over the same store it leads alone and refuses node 3."""
    kit = KITS[kit_name]()
    path = tmp_path / "db"
    store: LogStore = kit.open(path)
    conf = ConfState(voters=frozenset({6}), removed=frozenset({3}))
    meta = SnapshotMeta(index=10, term=2, conf_state=conf)
    node = RawNode(Config(id=6), store, random.Random(1))
    node.step(InstallSnapshot(src=1, dst=6, term=2, meta=meta))
    rd = node.ready()
    assert rd.snapshot == meta
    store.save(entries=rd.entries, hard_state=rd.hard_state, snapshot=rd.snapshot)
    node.advance(rd)
    if kit.durable:
        store.close()
        store = kit.open(path)
    try:
        assert store.initial_state() == (HardState(term=2, commit=10), conf)
        node = RawNode(Config(id=6, applied=10), store, random.Random(2))
        assert node.conf_state == conf
        node.campaign()
        for _ in range(10):  # a single voter: elected and commits its no-op by itself
            if not node.has_ready():
                break
            rd = node.ready()
            store.save(entries=rd.entries, hard_state=rd.hard_state, snapshot=rd.snapshot)
            node.advance(rd)
        assert node.role is Role.LEADER and node.commit == 11
        with pytest.raises(InvalidConfChange, match=REUSED.replace("4", "3")):
            node.propose_conf_change(ConfChange(ADD_LEARNER, 3))
    finally:
        store.close()
