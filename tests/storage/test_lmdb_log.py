"""LmdbLogStore beyond the shared contract: sharing the environment, disk size, errors,
concurrent readers, and detection of damaged records (bytes flipped in data.mdb)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from kvraft.core.types import ConfState, Entry, HardState, SnapshotMeta
from kvraft.errors import Compacted, Corrupted, StorageError
from kvraft.storage import records as rec
from kvraft.storage.lmdb_log import DB_LOG, DB_META, TAIL_BYTES, LmdbLogStore


def marked(index: int, term: int = 1) -> Entry:
    """An entry whose data is a unique marker we can find in the data file."""
    return Entry(term, index, data=b"<MARK-%06d-%06d>" % (index, term) * 4)


def open_store(path: Path) -> LmdbLogStore:
    return LmdbLogStore(path, map_size=1 << 28)


def flip_in_file(path: Path, needle: bytes, offset: int) -> None:
    """Flip one bit of the first occurrence of ``needle`` (+offset) in data.mdb, writing
    through a separate file descriptor, as a disk error would."""
    data_file = path / "data.mdb"
    blob = data_file.read_bytes()
    at = blob.find(needle)
    assert at >= 0, f"{needle!r} not found in {data_file}"
    fd = os.open(data_file, os.O_RDWR)
    try:
        os.pwrite(fd, bytes([blob[at + offset] ^ 0x10]), at + offset)
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "db"


def test_state_store_shares_the_environment(path: Path) -> None:
    s = open_store(path)
    try:
        kv = s.open_db("kv")
        with s.env.begin(write=True) as txn:
            txn.put(b"k", b"v", db=kv)
        s.save(entries=[marked(1)], hard_state=HardState(1, 1, 1))
        with pytest.raises(ValueError):
            s.open_db("raft_log")
        assert s.disk_size() >= 4096
    finally:
        s.close()
    s = open_store(path)
    try:
        with s.env.begin(db=s.open_db("kv")) as txn:
            assert txn.get(b"k") == b"v"
        assert s.entries(1, 2) == [marked(1)]
    finally:
        s.close()


def test_full_map_is_a_clear_storage_error_and_changes_nothing(path: Path) -> None:
    s = LmdbLogStore(path, map_size=1 << 20)
    try:
        s.save(entries=[marked(1)])
        with pytest.raises(StorageError, match="map_size"):
            s.save(entries=[Entry(1, i, data=bytes(4000)) for i in range(2, 1000)])
        assert s.last_index() == 1
        assert s.entries(1, 2) == [marked(1)]
    finally:
        s.close()


def test_readers_on_another_thread_see_whole_saves(path: Path) -> None:
    """The core reads while the persistence thread writes: every read is consistent."""
    s = open_store(path)
    done = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not done.is_set():
            first, last = s.first_index(), s.last_index()
            try:
                got = s.entries(first, last + 1)
            except Compacted:
                continue  # compaction moved first_index past `first` meanwhile: allowed
            want = [marked(i) for i in range(first, first + len(got))]
            if got != want or len(got) == 0 and last >= first:
                problems.append(f"entries({first}, {last + 1}) -> {len(got)} wrong entries")
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for b in range(200):
            s.save(entries=[marked(i) for i in range(b * 5 + 1, b * 5 + 6)])
            if b % 20 == 19:
                s.compact(SnapshotMeta(b * 5, 1))
    finally:
        done.set()
        t.join()
        s.close()
    assert not problems, problems[:5]
    assert reads[0] > 0


def test_flipped_entry_data_is_caught_on_open(path: Path) -> None:
    s = open_store(path)
    s.save(entries=[marked(i) for i in range(1, 51)], hard_state=HardState(1, 0, 10))
    s.close()
    flip_in_file(path, b"<MARK-000037-000001>", 3)
    with pytest.raises(Corrupted, match=rf"database '{DB_LOG}' entry 37: checksum mismatch"):
        open_store(path)


def test_flipped_entry_term_is_caught_on_open(path: Path) -> None:
    s = open_store(path)
    s.save(entries=[marked(i, term=0x4242) for i in range(1, 21)])
    s.close()
    # the stored value is crc | term u64 | type | data: flip a byte of entry 9's term
    head = (0x4242).to_bytes(8, "big") + b"\x00" + b"<MARK-000009-016962>"
    flip_in_file(path, head, 7)
    with pytest.raises(Corrupted, match=rf"'{DB_LOG}' entry 9: checksum mismatch"):
        open_store(path)


def test_damage_after_open_is_caught_on_read(path: Path) -> None:
    s = LmdbLogStore(path, map_size=1 << 28, tail_entries=0)  # every read goes to the file
    try:
        s.save(entries=[marked(i) for i in range(1, 31)])
        flip_in_file(path, b"<MARK-000012-000001>", 0)
        assert s.entries(1, 12) == [marked(i) for i in range(1, 12)]  # before the damage
        with pytest.raises(Corrupted, match=rf"'{DB_LOG}' entry 12"):
            s.entries(5, 20)
    finally:
        s.close()


def test_flipped_hard_state_is_caught_on_open(path: Path) -> None:
    s = open_store(path)
    s.save(entries=[marked(1)], hard_state=HardState(term=0x5151, vote=0x3737, commit=1))
    s.close()
    flip_in_file(path, (0x5151).to_bytes(8, "big") + (0x3737).to_bytes(8, "big"), 15)
    with pytest.raises(Corrupted, match=rf"'{DB_META}' key b'hard_state': checksum mismatch"):
        open_store(path)


def _delete(*indexes: int) -> Callable[[lmdb.Transaction, lmdb._Database], None]:
    def edit(txn: lmdb.Transaction, log: lmdb._Database) -> None:
        for i in indexes:
            txn.delete(rec.index_key(i), db=log)

    return edit


def _copy_7_to_8(txn: lmdb.Transaction, log: lmdb._Database) -> None:
    txn.put(rec.index_key(8), txn.get(rec.index_key(7), db=log) or b"", db=log)


@pytest.mark.parametrize(
    "edit, error",
    [
        (_delete(6), rf"'{DB_LOG}' entry 7: log jumps from 5 at 7"),  # a hole
        (_copy_7_to_8, rf"'{DB_LOG}' entry 8: checksum mismatch"),  # record under wrong key
        (_delete(9, 10), "commit index 9 beyond last entry 8"),  # committed entries lost
        (_delete(5), rf"'{DB_LOG}' entry 6: log starts at 6, expected 5"),  # gap at the front
    ],
)
def test_inconsistent_log_is_caught_on_open(
    path: Path, edit: Callable[[lmdb.Transaction, lmdb._Database], None], error: str
) -> None:
    """Records that are intact one by one but do not form a log that agrees with the
    snapshot (index 4) and the hard state (commit 9)."""
    s = open_store(path)
    s.save(entries=[marked(i) for i in range(1, 11)], hard_state=HardState(1, 0, 9))
    s.compact(SnapshotMeta(4, 1, ConfState(voters=frozenset({1}))))
    s.close()
    env = lmdb.open(str(path), max_dbs=16, map_size=1 << 28)
    with env.begin(write=True) as txn:
        edit(txn, env.open_db(DB_LOG.encode(), txn=txn))
    env.close()
    with pytest.raises(Corrupted, match=error):
        open_store(path)


def test_not_an_lmdb_file_is_reported(path: Path) -> None:
    path.mkdir()
    (path / "data.mdb").write_bytes(b"this is not a database" * 500)
    with pytest.raises(Corrupted, match="not a valid LMDB environment"):
        open_store(path)


def test_a_store_in_use_cannot_be_opened_twice(path: Path) -> None:
    s = open_store(path)
    try:
        with pytest.raises(StorageError, match="in use by another process"):
            open_store(path)
    finally:
        s.close()
    open_store(path).close()  # free again once closed


def test_the_newest_entries_are_served_from_memory_and_older_ones_from_the_file(
    path: Path,
) -> None:
    s = LmdbLogStore(path, map_size=1 << 28, tail_entries=4)
    try:
        saved = [marked(i) for i in range(1, 11)]
        s.save(entries=saved[:6])
        s.save(entries=saved[6:])
        got = s.entries(7, 11)
        assert got == saved[6:] and all(a is b for a, b in zip(got, saved[6:], strict=True))
        older = s.entries(1, 11)  # reaches before the tail: all of it read from the file
        assert older == saved and not any(a is b for a, b in zip(older, saved, strict=True))
        assert s.entries(8, 11, max_bytes=1) == saved[7:8]  # at least one, then the limit
        assert s.entries(8, 11, max_bytes=2 * saved[7].size()) == saved[7:9]
    finally:
        s.close()


def test_an_overwrite_compaction_or_snapshot_changes_what_the_tail_serves(path: Path) -> None:
    s = open_store(path)
    try:
        s.save(entries=[marked(i) for i in range(1, 11)])
        s.save(entries=[marked(8, term=2), marked(9, term=2)])  # a new leader's suffix
        want = [marked(i) for i in range(1, 8)] + [marked(8, 2), marked(9, 2)]
        assert s.last_index() == 9 and s.entries(5, 10) == want[4:]
        s.compact(SnapshotMeta(6, 1))
        with pytest.raises(Compacted):
            s.entries(6, 10)
        assert s.entries(7, 10) == want[6:]
        s.save(snapshot=SnapshotMeta(20, 3, ConfState(voters=frozenset({1}))))  # log replaced
        assert (s.first_index(), s.last_index()) == (21, 20)
        s.save(entries=[marked(21, 3)])
        assert s.entries(21, 22) == [marked(21, 3)]
    finally:
        s.close()
    s = open_store(path)  # and the file agrees
    try:
        assert s.entries(21, 22) == [marked(21, 3)]
    finally:
        s.close()


def test_an_entry_larger_than_the_tail_is_read_from_the_file(path: Path) -> None:
    s = open_store(path)
    try:
        big = Entry(1, 2, data=b"x" * (TAIL_BYTES + 1))
        s.save(entries=[marked(1), big, marked(3)])
        got = s.entries(1, 4)
        assert got == [marked(1), big, marked(3)] and got[1] is not big
        assert s.entries(3, 4)[0] == marked(3)
    finally:
        s.close()
