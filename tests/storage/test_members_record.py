"""The member address record of the state store: stored with a checksum, carried by
snapshot files, absent (None) in stores and files of older builds."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from kvraft.core.types import ConfState
from kvraft.errors import Corrupted
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.offline import restore_offline
from kvraft.storage.snapshot import MAGIC, read_info, restore, verify, write_snapshot
from kvraft.storage.state import DB_META, LmdbStateStore
from kvraft.storage.state_base import KeyValue, StatePosition

ADDRS = {1: "127.0.0.1:7001", 2: "127.0.0.1:7002", 7: "127.0.0.1:7007"}


@pytest.fixture
def envs(tmp_path: Path) -> Iterator[tuple[lmdb.Environment, lmdb.Environment]]:
    a = lmdb.open(str(tmp_path / "a"), max_dbs=16, map_size=1 << 28, sync=False)
    b = lmdb.open(str(tmp_path / "b"), max_dbs=16, map_size=1 << 28, sync=False)
    yield a, b
    a.close()
    b.close()


def test_members_record_is_none_until_written_then_durable(
    envs: tuple[lmdb.Environment, lmdb.Environment],
) -> None:
    store = LmdbStateStore(envs[0])
    with store.read() as r:
        assert r.members() is None
    with store.write() as w:
        w.set_members(ADDRS)
        assert w.members() == ADDRS  # the write view sees its own write
    with LmdbStateStore(envs[0]).read() as r:  # a new store object: read from disk
        assert r.members() == ADDRS


def test_damaged_members_record_is_reported(
    envs: tuple[lmdb.Environment, lmdb.Environment],
) -> None:
    store = LmdbStateStore(envs[0])
    with store.write() as w:
        w.set_members(ADDRS)
    meta = envs[0].open_db(DB_META)
    with envs[0].begin(write=True) as txn:
        raw = bytearray(txn.get(b"members", db=meta))
        raw[-2] ^= 0x20
        txn.put(b"members", bytes(raw), db=meta)
    with pytest.raises(Corrupted, match="members"), store.read() as r:
        r.members()


def _fill(store: LmdbStateStore, target: LmdbStateStore) -> None:
    """One key and the address record in ``store``; a stale record in ``target``."""
    with store.write() as w:
        w.put(KeyValue(b"k", b"v", 1, 1, 1))
        w.set_members(ADDRS)
        w.set_position(StatePosition(index=9, term=2, revision=1))
    with target.write() as w:
        w.set_members({3: "127.0.0.1:9999"})


def test_snapshot_carries_members_and_restore_brings_them(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src, dst = LmdbStateStore(envs[0]), LmdbStateStore(envs[1])
    _fill(src, dst)  # the stale record in dst is replaced
    path = write_snapshot(src, tmp_path / "s.snap").path
    assert read_info(path).members == ADDRS
    assert restore(dst, path).members == ADDRS
    with dst.read() as r:
        assert r.members() == ADDRS
        assert r.get(b"k") is not None


def _strip_members(path: Path, out: Path) -> None:
    """Rewrite ``path`` as an older build wrote it: no "members" key in the header."""
    data = path.read_bytes()
    at = len(MAGIC) + 2
    (n,) = struct.unpack_from(">I", data, at)
    doc = json.loads(data[at + 4 : at + 4 + n])
    del doc["members"]
    body = json.dumps(doc, sort_keys=True).encode()
    head = MAGIC + data[len(MAGIC) : at] + struct.pack(">I", len(body)) + body
    head += struct.pack(">I", zlib.crc32(head))
    rest = data[at + 4 + n + 4 : -4]  # chunks and trailer, without the file checksum
    crc = zlib.crc32(rest, zlib.crc32(head))
    out.write_bytes(head + rest + struct.pack(">I", crc))


def test_snapshot_of_an_older_build_restores_without_a_record(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src, dst = LmdbStateStore(envs[0]), LmdbStateStore(envs[1])
    _fill(src, dst)  # the stale record in dst is dropped
    path = write_snapshot(src, tmp_path / "new.snap").path
    old = tmp_path / "old.snap"
    _strip_members(path, old)
    assert verify(old).members is None
    restore(dst, old)
    with dst.read() as r:
        assert r.members() is None
        assert r.get(b"k") is not None


def test_offline_restore_under_a_new_membership_rewrites_the_addresses(
    tmp_path: Path, envs: tuple[lmdb.Environment, lmdb.Environment]
) -> None:
    src = LmdbStateStore(envs[0])
    with src.write() as w:
        w.set_members(ADDRS)
        w.set_position(StatePosition(index=5, term=1, conf_state=ConfState(
            voters=frozenset(ADDRS))))
    path = write_snapshot(src, tmp_path / "s.snap").path
    cases = [
        (ConfState(voters=frozenset({1, 9})), None, {1: ADDRS[1]}),
        (ConfState(voters=frozenset({1})), {1: "10.0.0.1:1"}, {1: "10.0.0.1:1"}),
        (None, None, ADDRS),
    ]
    for i, (conf, members, want) in enumerate(cases):
        kept = restore_offline(path, tmp_path / f"raft{i}", tmp_path / f"snap{i}",
                               conf_state=conf, members=members)
        assert read_info(kept.path).members == want  # a snapshot sent on carries them
        log = LmdbLogStore(tmp_path / f"raft{i}")
        try:
            with LmdbStateStore(log.env).read() as r:
                assert r.members() == want
        finally:
            log.close()
