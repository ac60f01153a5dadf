"""Snapshot files: round trip, consistency under concurrent writes, bounded memory,
damage detection, the snapshot directory."""

from __future__ import annotations

import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from kvraft.core.types import ConfState
from kvraft.errors import SnapshotError
from kvraft.storage.snapshot import (
    SnapshotDir,
    SnapshotReader,
    read_info,
    restore,
    verify,
    write_snapshot,
)
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import KeyValue, Session, StatePosition

CI = bool(os.environ.get("CI"))
BIG_KEYS = 20_000 if CI else 120_000


def open_env(path: Path, *, sync: bool = False) -> lmdb.Environment:
    return lmdb.open(str(path), max_dbs=16, map_size=1 << 31, sync=sync)


@pytest.fixture
def envs(tmp_path: Path) -> Iterator[tuple[lmdb.Environment, lmdb.Environment]]:
    a, b = open_env(tmp_path / "a"), open_env(tmp_path / "b")
    yield a, b
    a.close()
    b.close()


CONF = ConfState(voters=frozenset({1, 2, 3}), removed=frozenset({4}))


def dump(store: LmdbStateStore) -> tuple[StatePosition, list[KeyValue], list[Session]]:
    with store.export() as exp:
        return exp.position, list(exp.key_values()), list(exp.sessions())


def fill(store: LmdbStateStore, n: int = 50, value_size: int = 20) -> None:
    with store.write() as w:
        for i in range(n):
            w.put(KeyValue(b"key/%06d" % i, bytes([i % 251]) * value_size, i + 1, i + 2, 2))
        w.put(KeyValue(b"L" * 3000, b"long key", 3, 4, 1))
        for c in range(1, 6):
            w.put_session(Session(c, c * 10, 1000 + c, b"result-%d" % c))
        w.set_position(StatePosition(77, 5, 60, 1005, CONF))


def test_round_trip_restores_everything(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src, dst = LmdbStateStore(envs[0]), LmdbStateStore(envs[1])
    fill(src)
    path = tmp_path / "s.snap"
    info = write_snapshot(src, path, chunk_bytes=256)  # many small chunks
    assert (info.keys, info.sessions) == (51, 5)
    assert info.meta.index == 77 and info.meta.term == 5
    assert info.meta.conf_state == CONF
    assert read_info(path).position == info.position
    assert verify(path).keys == 51
    with dst.write() as w:  # something to be replaced
        w.put(KeyValue(b"stale", b"x", 1, 1, 1))
    restored = restore(dst, path)
    assert (restored.keys, restored.sessions) == (51, 5)
    assert dump(dst) == dump(src)
    with dst.read() as r:  # the session time index is rebuilt too
        assert r.sessions_seen_before(1003, 10) == [1, 2]


def test_empty_state_round_trips(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src, dst = LmdbStateStore(envs[0]), LmdbStateStore(envs[1])
    info = write_snapshot(src, tmp_path / "e.snap")
    assert (info.keys, info.sessions, info.position.index) == (0, 0, 0)
    restore(dst, tmp_path / "e.snap")
    assert dump(dst) == dump(src)


def _batch(b: int, universe: int) -> tuple[dict[bytes, bytes], bytes]:
    """Deterministic batch number ``b``: 20 puts and one delete."""
    puts = {
        b"key/%07d" % ((b * 7919 + j * 104729) % universe): b"%d-%d" % (b, j) for j in range(20)
    }
    return puts, b"key/%07d" % ((b * 31) % universe)


def test_snapshot_while_writes_continue_restores_the_state_at_its_index(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src, dst = LmdbStateStore(envs[0]), LmdbStateStore(envs[1])
    value = b"v" * 200
    model = {b"key/%07d" % i: value for i in range(BIG_KEYS)}
    with src.write() as w:
        for k, v in model.items():
            w.put(KeyValue(k, v, 1, 1, 1))
        w.set_position(StatePosition(index=1, term=1, revision=1))

    started, stop = threading.Event(), threading.Event()
    written: list[int] = []

    def writer() -> None:
        b = 2
        while not stop.is_set() and b < 100_000:
            puts, gone = _batch(b, BIG_KEYS)
            with src.write() as w:
                for k, v in puts.items():
                    w.put(KeyValue(k, v, 1, b, 2))
                w.delete(gone)
                w.set_position(StatePosition(index=b, term=1, revision=b))
            written.append(b)
            started.set()
            b += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert started.wait(30)
        tracemalloc.start()
        info = write_snapshot(src, tmp_path / "big.snap")
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        index_when_done = written[-1]
    finally:
        stop.set()
        t.join(30)
    assert info.position.index > 1
    assert written[-1] > info.position.index, "writes did not continue during the snapshot"

    for b in range(2, info.position.index + 1):
        puts, gone = _batch(b, BIG_KEYS)
        model.update(puts)
        model.pop(gone, None)

    tracemalloc.start()
    restored = restore(dst, tmp_path / "big.snap")
    _, restore_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert restored.position.index == info.position.index
    with dst.export() as exp:
        got = {kv.key: kv.value for kv in exp.key_values()}
    assert got == model
    size = info.size_bytes
    print(
        f"\nsnapshot of {len(model)} keys, {size / 1e6:.1f} MB at index {info.position.index} "
        f"(writer reached {index_when_done} meanwhile); peak traced memory: "
        f"write {write_peak / 1e6:.2f} MB, restore {restore_peak / 1e6:.2f} MB"
    )
    assert size > 4 * (1 << 20)
    assert write_peak < 8 * (1 << 20) and restore_peak < 8 * (1 << 20)


@pytest.fixture
def good_snapshot(tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]) -> Path:
    fill(LmdbStateStore(envs[0]), n=200)
    return write_snapshot(LmdbStateStore(envs[0]), tmp_path / "good.snap", chunk_bytes=2048).path


def _offsets(size: int) -> list[int]:
    """Every byte of the header and the end, a stride through the rest."""
    stride = 11 if CI else 3
    return sorted({*range(0, 128), *range(128, size, stride), *range(max(0, size - 64), size)})


def test_every_truncation_is_rejected(good_snapshot: Path, tmp_path: Path) -> None:
    data = good_snapshot.read_bytes()
    bad = tmp_path / "bad.snap"
    for cut in _offsets(len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(SnapshotError, match=str(bad)):
            verify(bad)


def test_every_bit_flip_is_rejected(good_snapshot: Path, tmp_path: Path) -> None:
    data = good_snapshot.read_bytes()
    bad = tmp_path / "bad.snap"
    for at in _offsets(len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 1 << (at % 8)
        bad.write_bytes(bytes(flipped))
        with pytest.raises(SnapshotError):
            verify(bad)


def test_trailing_garbage_and_foreign_files_are_rejected(
    good_snapshot: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.snap"
    bad.write_bytes(good_snapshot.read_bytes() + b"\0")
    with pytest.raises(SnapshotError, match="after the trailer"):
        verify(bad)
    bad.write_bytes(b"hello world, not a snapshot")
    with pytest.raises(SnapshotError, match="not a kvraft snapshot"):
        read_info(bad)
    data = bytearray(good_snapshot.read_bytes())
    data[9] = 7  # format version 7
    bad.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="unknown snapshot format version 7"):
        read_info(bad)
    with pytest.raises(SnapshotError, match="cannot open"):
        read_info(tmp_path / "missing.snap")


def test_restoring_a_damaged_file_keeps_the_old_state(
    good_snapshot: Path, tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    dst = LmdbStateStore(envs[1])
    with dst.write() as w:
        w.put(KeyValue(b"mine", b"old", 1, 1, 1))
        w.set_position(StatePosition(3, 1, 1))
    before = dump(dst)
    data = bytearray(good_snapshot.read_bytes())
    for name, damaged in [
        ("truncated", bytes(data[: len(data) - 3])),
        ("flipped", bytes(data[:-40]) + bytes([data[-40] ^ 0x10]) + bytes(data[-39:])),
    ]:
        bad = tmp_path / f"{name}.snap"
        bad.write_bytes(damaged)
        with pytest.raises(SnapshotError):
            restore(dst, bad)
        assert dump(dst) == before


def test_reader_streams_keys_then_sessions(good_snapshot: Path) -> None:
    with SnapshotReader(good_snapshot) as r:
        keys = [kv.key for kv in r.key_values()]
        assert keys == sorted(keys) and len(keys) == 201
        assert [s.client_id for s in r.sessions()] == [1, 2, 3, 4, 5]
        assert r.done


def test_snapshot_dir_keeps_the_newest_and_cleans_up(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    store = LmdbStateStore(envs[0])
    d = tmp_path / "snaps"
    d.mkdir()
    (d / "create-leftover.part").write_bytes(b"half")
    snaps = SnapshotDir(d, keep=2)
    assert not list(d.glob("*.part")) and snaps.latest() is None
    for index in (10, 20, 30):
        with store.write() as w:
            w.put(KeyValue(b"k", b"%d" % index, 1, index, 1))
            w.set_position(StatePosition(index, 2, index))
        info = snaps.create(store)
        assert info.path == snaps.path_for(index, 2)
    assert [p.name for p in snaps.list()] == [
        snaps.path_for(20, 2).name,
        snaps.path_for(30, 2).name,
    ]
    latest = snaps.latest()
    assert latest is not None and latest.meta.index == 30

    # a received snapshot: verified, then moved into place
    incoming = snaps.incoming()
    incoming.write_bytes(snaps.path_for(30, 2).read_bytes())
    assert snaps.install(incoming).path == snaps.path_for(30, 2)
    bad = snaps.incoming()
    bad.write_bytes(snaps.path_for(30, 2).read_bytes()[:-1])
    with pytest.raises(SnapshotError, match="truncated"):
        snaps.install(bad)
    assert not bad.exists()
    assert len(snaps.list()) == 2
