"""Offline snapshot operations for ``kvraft snapshot status|restore`` (no node running).

``restore_offline`` seeds a FRESH node's storage from a snapshot file: the KV state, the
log store's snapshot metadata (the log then starts after the snapshot's index), the hard
state (term of the snapshot, commit = its index) and the membership, and keeps the file
as the node's latest snapshot. With ``conf_state`` it rewrites the membership (disaster
recovery: rebuild a cluster from one node's snapshot under new members) and writes a new
snapshot file that says so; the replicated member addresses then become ``members`` (if
given) or the snapshot's addresses of the ids still in the membership.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from pathlib import Path

from kvraft.core.types import ConfState, HardState
from kvraft.errors import StorageError
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir, SnapshotInfo, restore, verify
from kvraft.storage.state import LmdbStateStore


def status(path: Path) -> SnapshotInfo:
    """Read and check a whole snapshot file (every checksum); SnapshotError if damaged."""
    return verify(Path(path))


def restore_offline(
    snapshot: Path,
    log_dir: Path,
    snapshot_dir: Path,
    *,
    conf_state: ConfState | None = None,
    members: Mapping[int, str] | None = None,
) -> SnapshotInfo:
    """Seed the node whose LMDB environment is ``log_dir`` and snapshot directory is
    ``snapshot_dir`` from ``snapshot``. Refuses (StorageError) if that node already has
    a log, a snapshot or state; SnapshotError if the file is damaged (nothing written).
    Returns the snapshot now kept in ``snapshot_dir``."""
    info = verify(Path(snapshot))
    if conf_state is not None and not conf_state.voters:
        raise ValueError("the new membership needs at least one voter")
    log = LmdbLogStore(log_dir)
    try:
        state = LmdbStateStore(log.env)
        if log.last_index() or log.snapshot_meta().index or state.position().index:
            raise StorageError(
                f"{log_dir} already holds a node's data (log up to {log.last_index()}, state "
                f"applied up to {state.position().index}); restore only into a fresh data dir"
            )
        snaps = SnapshotDir(snapshot_dir)
        incoming = snaps.incoming()
        shutil.copyfile(snapshot, incoming)
        kept = snaps.install(incoming)
        restore(state, kept.path)
        if conf_state is not None:
            with state.write() as w:
                pos = w.position()  # ids removed for good stay retired unless named again
                removed = (pos.conf_state.removed | conf_state.removed) - conf_state.all_nodes()
                conf = dataclasses.replace(conf_state, removed=removed)
                w.set_position(dataclasses.replace(pos, conf_state=conf))
                if members is None:
                    members = {i: a for i, a in (w.members() or {}).items()
                               if i in conf.all_nodes()}
                w.set_members(members)
            kept = snaps.create(state)  # same index/term: replaces the copied file
        meta = kept.meta
        log.save(snapshot=meta, hard_state=HardState(term=meta.term, commit=meta.index))
        log.save_conf_state(meta.conf_state)
        return dataclasses.replace(kept, keys=info.keys, sessions=info.sessions)
    finally:
        log.close()
