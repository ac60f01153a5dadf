"""Startup reconciliation of a node's storage: bootstrap, join, and repairs after crashes
between the state store and the log store (same LMDB environment, separate writes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvraft.core.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    decode_conf_change,
    encode_conf_change,
)
from kvraft.errors import Corrupted
from kvraft.kv.machine import KvStateMachine
from kvraft.server import recovery
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import StatePosition

PEERS = {1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
THREE = ConfState(voters=frozenset(PEERS))


class Node:
    def __init__(self, tmp: Path) -> None:
        self.log = LmdbLogStore(tmp / "db")
        self.state = LmdbStateStore(self.log.env)
        self.snaps = SnapshotDir(tmp / "snapshots")
        self.machine = KvStateMachine(self.state, self.snaps)

    def prepare(self, join: bool = False) -> str:
        return recovery.prepare(self.log, self.machine, self.snaps, peers=PEERS, join=join)

    def set_position(self, pos: StatePosition) -> None:
        with self.state.write() as w:
            w.set_position(pos)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path)
    yield n
    n.log.close()


def test_fresh_node_bootstraps_membership_from_peers(node: Node) -> None:
    assert node.prepare() == "bootstrap"
    hard, conf = node.log.initial_state()
    assert conf == THREE and hard == HardState(term=1, commit=3)
    # the same committed ADD_VOTER entries on every initial member, with addresses
    changes = [decode_conf_change(e.data) for e in node.log.entries(1, 4)]
    assert [(c.type, c.node_id, c.context) for c in changes] == [
        (ConfChangeType.ADD_VOTER, i, PEERS[i].encode()) for i in (1, 2, 3)]
    assert node.prepare() == "restart"  # idempotent: the second start is a restart


def test_joining_node_saves_no_membership(node: Node) -> None:
    assert node.prepare(join=True) == "join"
    assert node.log.initial_state()[1] == ConfState()


def test_membership_follows_the_state_at_the_applied_index(node: Node) -> None:
    node.prepare()
    four = ConfState(voters=frozenset({1, 2, 3, 4}))
    entries = [Entry(2, i) for i in range(4, 7)]
    node.log.save(entries=entries, hard_state=HardState(2, 1, 6))
    node.set_position(StatePosition(index=6, term=2, revision=3, conf_state=four))
    node.prepare()
    assert node.log.initial_state()[1] == four


def test_membership_rederived_from_conf_change_entries_when_state_has_none(node: Node) -> None:
    node.prepare()

    def add(i: int, node_id: int) -> Entry:
        cc = ConfChange(ConfChangeType.ADD_VOTER, node_id)
        return Entry(2, i, EntryType.CONF_CHANGE, encode_conf_change(cc))

    # after the bootstrap entries 1..3 (voters 1, 2, 3): a no-op, add 4, a no-op, add 5
    entries = [Entry(2, 4), add(5, 4), Entry(2, 6), add(7, 5)]
    node.log.save(entries=entries, hard_state=HardState(2, 1, 7))
    node.set_position(StatePosition(index=6, term=2))  # no membership recorded
    node.prepare()
    assert node.log.initial_state()[1].voters == {1, 2, 3, 4}  # entry 7 is not applied


def test_state_ahead_of_log_records_a_snapshot_in_the_log(node: Node) -> None:
    """A crash after restoring a received snapshot but before the log recorded it."""
    node.prepare()
    node.log.save(entries=[Entry(2, 4), Entry(2, 5)], hard_state=HardState(2, 1, 5))
    node.set_position(StatePosition(index=40, term=3, revision=9, conf_state=THREE))
    node.prepare()
    meta = node.log.snapshot_meta()
    assert (meta.index, meta.term, meta.conf_state) == (40, 3, THREE)
    assert node.log.first_index() == 41 and node.log.last_index() == 40


def test_state_disagreeing_with_log_is_reported_as_corruption(node: Node) -> None:
    node.prepare()
    node.log.save(entries=[Entry(2, 4), Entry(3, 5)], hard_state=HardState(3, 1, 5))
    node.set_position(StatePosition(index=5, term=2, conf_state=THREE))
    with pytest.raises(Corrupted, match="applied entry 5 of term 2.*holds term 3"):
        node.prepare()


def test_restored_snapshot_over_a_conflicting_uncommitted_entry_is_recorded(node: Node) -> None:
    """A crash after restoring a received snapshot (index 5, term 3) but before the log
    recorded it, on a follower whose log still held an uncommitted entry of an older term
    at that index: the state store wins (it only ever holds committed state), the node
    starts instead of refusing forever."""
    node.prepare()
    node.log.save(entries=[Entry(2, i) for i in (4, 5, 6)], hard_state=HardState(2, 1, 4))
    node.set_position(StatePosition(index=5, term=3, revision=2, conf_state=THREE))
    node.snaps.create(node.state)  # the received snapshot's file, installed before restore
    assert node.prepare() == "restart"
    meta = node.log.snapshot_meta()
    assert (meta.index, meta.term, meta.conf_state) == (5, 3, THREE)
    assert node.log.first_index() == 6 and node.log.last_index() == 5


def test_conflicting_entry_without_the_snapshot_file_is_still_corruption(node: Node) -> None:
    node.prepare()
    node.log.save(entries=[Entry(2, i) for i in (4, 5, 6)], hard_state=HardState(2, 1, 4))
    node.set_position(StatePosition(index=5, term=3, conf_state=THREE))
    with pytest.raises(Corrupted, match="applied entry 5 of term 3.*holds term 2"):
        node.prepare()
