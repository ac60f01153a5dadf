"""A snapshot received from the leader is checked completely before the core hears of it.

The transfer's checksums only prove the follower got the bytes the leader read; a file
that rotted on the leader's disk arrives "intact". Handed to the core, its restore would
fail on the I/O thread and stop the node, and every retry by the leader would stop it
again. Refused before delivery, the follower just keeps running on its old state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from kvraft.core.types import ConfState, InstallSnapshot, SnapshotMeta
from kvraft.errors import SnapshotError
from kvraft.server.machine import deliver_verified_snapshot
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import KeyValue, StatePosition


@pytest.fixture
def snapshot_file(tmp_path: Path) -> Iterator[Path]:
    env = lmdb.open(str(tmp_path / "db"), max_dbs=16, map_size=1 << 26)
    try:
        store = LmdbStateStore(env)
        pos = StatePosition(index=9, term=2, conf_state=ConfState(voters=frozenset({1, 2})))
        kvs = [KeyValue(b"k%04d" % i, b"v" * 100, 1, 1, 1) for i in range(200)]
        store.replace(pos, kvs, [])
        yield SnapshotDir(tmp_path / "snaps").create(store).path
    finally:
        env.close()


def _deliver(path: Path) -> list[tuple[InstallSnapshot, str]]:
    """Deliver ``path`` as received from node 1; returns what reached the driver."""
    delivered: list[tuple[InstallSnapshot, str]] = []
    msg = InstallSnapshot(1, 2, 2, SnapshotMeta(9, 2, ConfState(voters=frozenset({1, 2}))))
    asyncio.run(deliver_verified_snapshot(lambda m, p: delivered.append((m, p)), msg, path))
    return delivered


def test_an_intact_snapshot_file_is_delivered(snapshot_file: Path) -> None:
    [(msg, path)] = _deliver(snapshot_file)
    assert path == str(snapshot_file) and msg.meta.index == 9


def test_a_damaged_snapshot_file_is_refused_and_removed(snapshot_file: Path) -> None:
    data = bytearray(snapshot_file.read_bytes())
    data[len(data) // 2] ^= 0x40  # a bit flipped inside the records
    snapshot_file.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        _deliver(snapshot_file)
    assert not snapshot_file.exists()
