"""Bringing a node's storage to a consistent starting point before the core is built.

- **Bootstrap** (fresh data dir, not ``--join``): as etcd's raft.Bootstrap, the log starts
  with one ADD_VOTER entry per initial voter (sorted by id, the member's address in the
  context) at term 1, already committed, and the membership is saved. Every initial
  member writes the same entries, so they agree on indexes 1..n and no election can
  overwrite them; a member added later learns the initial membership (and addresses) by
  applying them like any other entry (or from a snapshot's metadata). With ``--join``
  nothing is saved: the node waits, without membership, for the leader to contact it.
- **Restart**: the KV state store's applied position (index, term, membership) is the
  truth about what was applied; the log store is repaired to agree with it:
  * state behind the log's snapshot (should not happen): restore the snapshot file;
  * state ahead of the log (crash after restoring a received snapshot, before the log
    recorded it): record that snapshot's metadata in the log; the same when the log holds
    another term at the applied index above its commit index and the snapshot file for
    the applied position exists (the log's entry there was an uncommitted one that the
    snapshot was about to replace);
  * membership: the one saved with the applied index; if absent, re-derived from the
    snapshot metadata plus the CONF_CHANGE entries up to the applied index.
Anything that cannot be reconciled raises Corrupted naming what disagrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import structlog

from kvraft.core.membership import next_conf_state
from kvraft.core.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    SnapshotMeta,
    decode_conf_change,
    encode_conf_change,
)
from kvraft.errors import Compacted, Corrupted, SnapshotError
from kvraft.kv.machine import KvStateMachine
from kvraft.storage.base import LogStore
from kvraft.storage.snapshot import SnapshotDir, read_info
from kvraft.storage.state_base import StatePosition

log = structlog.get_logger("kvraft.server")

BOOTSTRAP_TERM = 1


def bootstrap_entries(peers: Mapping[int, str]) -> list[Entry]:
    """The identical, committed first entries of every initial member's log."""
    return [
        Entry(
            term=BOOTSTRAP_TERM,
            index=i,
            type=EntryType.CONF_CHANGE,
            data=encode_conf_change(
                ConfChange(ConfChangeType.ADD_VOTER, node_id, peers[node_id].encode())
            ),
        )
        for i, node_id in enumerate(sorted(peers), start=1)
    ]

def is_fresh(store: LogStore, machine: KvStateMachine) -> bool:
    hard, conf = store.initial_state()
    return (
        hard == HardState()
        and not conf.all_nodes()
        and store.last_index() == 0
        and store.snapshot_meta().index == 0
        and machine.applied() == (0, 0)
    )


def prepare(
    store: LogStore,
    machine: KvStateMachine,
    snapshots: SnapshotDir,
    *,
    peers: Mapping[int, str],
    join: bool,
) -> str:
    """Bootstrap or reconcile; returns what was done ("bootstrap", "join", "restart")."""
    for leftover in Path(snapshots.path).glob("*.recv"):  # a transfer cut by a crash
        leftover.unlink(missing_ok=True)
    if is_fresh(store, machine):
        if join:
            return "join"
        entries = bootstrap_entries(peers)
        store.save(
            entries=entries, hard_state=HardState(term=BOOTSTRAP_TERM, commit=len(entries))
        )
        store.save_conf_state(ConfState(voters=frozenset(peers)))
        return "bootstrap"
    _reconcile(store, machine, snapshots)
    return "restart"


def _reconcile(store: LogStore, machine: KvStateMachine, snapshots: SnapshotDir) -> None:
    snap = store.snapshot_meta()
    pos = machine.position()
    if pos.index < snap.index:
        _restore_from_file(machine, snapshots, snap)
        pos = machine.position()
    if pos.index > store.last_index() or _restored_over_uncommitted(store, snapshots, pos):
        log.warning("state is ahead of the log: recording its snapshot in the log",
                    applied=pos.index, log_last=store.last_index())
        store.save(snapshot=SnapshotMeta(pos.index, pos.term, pos.conf_state))
    elif pos.index > 0:
        term = _term_at(store, pos)
        if term != pos.term:
            raise Corrupted(
                f"state store applied entry {pos.index} of term {pos.term}, but the raft log "
                f"holds term {term} there: the data dir is inconsistent"
            )
    want = pos.conf_state if pos.conf_state.all_nodes() else derive_conf_state(store, pos.index)
    if want.all_nodes() and want != store.initial_state()[1]:
        log.info("membership re-derived at the applied index", applied=pos.index,
                 voters=sorted(want.voters), learners=sorted(want.learners))
        store.save_conf_state(want)


def _term_at(store: LogStore, pos: StatePosition) -> int:
    """The log's term at the applied index (pos.term if compacted: the snapshot covers it)."""
    try:
        return store.term(pos.index)
    except Compacted:
        return pos.term


def _restored_over_uncommitted(
    store: LogStore, snapshots: SnapshotDir, pos: StatePosition
) -> bool:
    """Did the state come from a received snapshot that replaces an uncommitted entry of
    another term at its index? (Otherwise a term mismatch is corruption.)"""
    return (
        pos.index > store.initial_state()[0].commit
        and _term_at(store, pos) != pos.term
        and snapshots.path_for(pos.index, pos.term).exists()
    )


def derive_conf_state(store: LogStore, applied: int) -> ConfState:
    """Membership at ``applied``: the snapshot's, plus CONF_CHANGE entries up to applied."""
    snap = store.snapshot_meta()
    cs = snap.conf_state
    lo, hi = snap.index + 1, min(applied, store.last_index()) + 1
    while lo < hi:
        batch = store.entries(lo, hi, 4 << 20)
        for e in batch:
            if e.type == EntryType.CONF_CHANGE:
                cs = next_conf_state(cs, decode_conf_change(e.data))
        lo = batch[-1].index + 1
    return cs


def _restore_from_file(machine: KvStateMachine, snapshots: SnapshotDir, snap: SnapshotMeta) -> None:
    path = snapshots.path_for(snap.index, snap.term)
    try:
        if read_info(path).meta.index != snap.index:
            raise SnapshotError(f"{path} does not hold index {snap.index}")
        machine.restore_snapshot(path, snap)
    except (OSError, SnapshotError) as exc:
        raise Corrupted(
            f"the raft log is compacted up to {snap.index} but the state store is behind "
            f"it and snapshot file {path} cannot restore it: {exc}"
        ) from exc
    log.warning("state restored from the local snapshot", index=snap.index)
