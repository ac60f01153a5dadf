"""Offline snapshot restore into a fresh data dir (``kvraft snapshot restore``)."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from kvraft.core.types import ConfState, Entry, HardState
from kvraft.errors import SnapshotError, StorageError
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.offline import restore_offline, status
from kvraft.storage.snapshot import SnapshotDir, read_info, write_snapshot
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import KeyValue, Session, StatePosition

VOTERS = ConfState(voters=frozenset({1, 2, 3}), removed=frozenset({4}))


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    env = lmdb.open(str(tmp_path / "src"), max_dbs=16, map_size=1 << 28)
    try:
        store = LmdbStateStore(env)
        keys = [KeyValue(b"k%04d" % i, b"v", 1, i + 1, 1) for i in range(300)]
        store.replace(StatePosition(500, 7, 300, 99, VOTERS), keys, [Session(4, 2, 99, b"r")])
        return write_snapshot(store, tmp_path / "backup.snap").path
    finally:
        env.close()


def test_restore_seeds_log_state_and_snapshot_dir(snap: Path, tmp_path: Path) -> None:
    summary = status(snap).to_dict()
    assert (summary["index"], summary["term"], summary["keys"], summary["sessions"]) == (
        500,
        7,
        300,
        1,
    )
    assert summary["conf_state"] == {
        "voters": [1, 2, 3], "learners": [], "voters_outgoing": [], "removed": [4]
    }
    kept = restore_offline(snap, tmp_path / "node" / "raft", tmp_path / "node" / "snap")
    assert kept.meta.index == 500 and kept.keys == 300 and kept.sessions == 1
    log = LmdbLogStore(tmp_path / "node" / "raft")
    try:
        assert log.snapshot_meta() == kept.meta
        assert (log.first_index(), log.last_index()) == (501, 500)
        assert log.initial_state() == (HardState(term=7, commit=500), VOTERS)
        state = LmdbStateStore(log.env)
        assert state.position() == StatePosition(500, 7, 300, 99, VOTERS)
        assert state.get(b"k0042") == KeyValue(b"k0042", b"v", 1, 43, 1)
        # the node can go on from there
        log.save(entries=[Entry(term=8, index=501)], hard_state=HardState(8, 1, 500))
        assert log.last_index() == 501
    finally:
        log.close()
    latest = SnapshotDir(tmp_path / "node" / "snap").latest()
    assert latest is not None and latest.meta == kept.meta


def test_restore_can_rewrite_membership(snap: Path, tmp_path: Path) -> None:
    """Ids the snapshot says were removed stay retired under the new membership."""
    kept = restore_offline(
        snap, tmp_path / "raft", tmp_path / "snap", conf_state=ConfState(voters=frozenset({9}))
    )
    solo = ConfState(voters=frozenset({9}), removed=frozenset({4}))
    assert kept.meta.conf_state == solo and read_info(kept.path).meta.conf_state == solo
    log = LmdbLogStore(tmp_path / "raft")
    try:
        assert log.initial_state()[1] == solo
        assert LmdbStateStore(log.env).position().conf_state == solo
    finally:
        log.close()


def test_restore_refuses_a_used_data_dir_and_a_damaged_file(snap: Path, tmp_path: Path) -> None:
    restore_offline(snap, tmp_path / "raft", tmp_path / "snap")
    with pytest.raises(StorageError, match="restore only into a fresh data dir"):
        restore_offline(snap, tmp_path / "raft", tmp_path / "snap")
    bad = tmp_path / "bad.snap"
    bad.write_bytes(snap.read_bytes()[:-10])
    with pytest.raises(SnapshotError, match="truncated"):
        restore_offline(bad, tmp_path / "raft2", tmp_path / "snap2")
    assert not (tmp_path / "raft2").exists()
