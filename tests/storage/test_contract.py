"""The LogStore contract (kvraft/storage/base.py), run against every implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvraft.core.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from kvraft.errors import Compacted, StorageError, Unavailable
from kvraft.storage.base import LogStore
from tests.storage.conftest import Kit, reopen


def ents(lo: int, hi: int, term: int, size: int = 10) -> list[Entry]:
    """Entries lo..hi-1 of one term, with data that names them."""
    return [
        Entry(term, i, EntryType.NORMAL, f"{i}:{term}:".encode().ljust(size, b"."))
        for i in range(lo, hi)
    ]


def all_entries(s: LogStore) -> list[Entry]:
    return s.entries(s.first_index(), s.last_index() + 1)


CS = ConfState(voters=frozenset({1, 2, 3}))


def test_fresh_store_is_empty(store: LogStore) -> None:
    assert store.initial_state() == (HardState(), ConfState())
    assert store.snapshot_meta() == SnapshotMeta()
    assert (store.first_index(), store.last_index()) == (1, 0)
    assert store.term(0) == 0
    assert store.entries(1, 1) == []
    with pytest.raises(Unavailable):
        store.term(1)
    with pytest.raises(Unavailable):
        store.entries(1, 2)
    with pytest.raises(Compacted):
        store.entries(0, 1)


def test_append_and_read_back(store: LogStore) -> None:
    store.save(entries=ents(1, 6, 1))
    store.save(entries=ents(6, 9, 2) + [Entry(2, 9, EntryType.CONF_CHANGE, b"cc")])
    assert (store.first_index(), store.last_index()) == (1, 9)
    assert all_entries(store) == ents(1, 6, 1) + ents(6, 9, 2) + [
        Entry(2, 9, EntryType.CONF_CHANGE, b"cc")
    ]
    assert [store.term(i) for i in range(0, 10)] == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    assert store.entries(3, 5) == ents(3, 5, 1)
    with pytest.raises(Unavailable):
        store.term(10)
    with pytest.raises(Unavailable):
        store.entries(5, 11)
    with pytest.raises(ValueError):
        store.entries(5, 4)


def test_entries_respect_byte_budget(store: LogStore) -> None:
    store.save(entries=ents(1, 11, 1, size=100))
    one = ents(1, 2, 1, size=100)[0].size()
    assert store.entries(1, 11, max_bytes=0) == ents(1, 2, 1, size=100)  # at least one
    assert store.entries(1, 11, max_bytes=3 * one) == ents(1, 4, 1, size=100)
    assert store.entries(1, 11, max_bytes=3 * one + 1) == ents(1, 4, 1, size=100)
    assert store.entries(1, 11, max_bytes=100 * one) == ents(1, 11, 1, size=100)


def test_overwrite_truncates_the_stored_suffix(store: LogStore) -> None:
    store.save(entries=ents(1, 11, 1))
    store.save(entries=ents(5, 7, 2))
    assert store.last_index() == 6
    assert all_entries(store) == ents(1, 5, 1) + ents(5, 7, 2)
    with pytest.raises(Unavailable):
        store.term(7)
    store.save(entries=ents(7, 8, 3))
    assert all_entries(store) == ents(1, 5, 1) + ents(5, 7, 2) + ents(7, 8, 3)


def test_survives_reopen(kit: Kit, store: LogStore, tmp_path: Path) -> None:
    store.save(entries=ents(1, 21, 1), hard_state=HardState(term=1, vote=2, commit=5))
    store.save_conf_state(CS)
    store.compact(SnapshotMeta(index=4, term=1, conf_state=CS))
    store.save(entries=ents(15, 18, 3), hard_state=HardState(term=3, vote=0, commit=12))
    s = reopen(kit, store, tmp_path / "db")
    try:
        assert s.initial_state() == (HardState(term=3, vote=0, commit=12), CS)
        assert s.snapshot_meta() == SnapshotMeta(index=4, term=1, conf_state=CS)
        assert (s.first_index(), s.last_index()) == (5, 17)
        assert all_entries(s) == ents(5, 15, 1) + ents(15, 18, 3)
        assert s.term(4) == 1 and s.term(17) == 3
    finally:
        s.close()


@pytest.mark.parametrize(
    "bad, error",
    [
        ([Entry(1, 12)], Unavailable),  # gap after last index 10
        ([Entry(1, 5), Entry(1, 7)], ValueError),  # not contiguous
        ([Entry(2, 11), Entry(1, 12)], ValueError),  # term decreases inside the batch
        ([Entry(1, 9)], ValueError),  # term 1 after entry 8 of term 2
        ([Entry(2, 3)], ValueError),  # overwrites committed entry 3 (commit 4)
    ],
)
def test_bad_entries_are_rejected_and_change_nothing(
    store: LogStore, bad: list[Entry], error: type[Exception]
) -> None:
    store.save(entries=ents(1, 8, 1) + ents(8, 11, 2), hard_state=HardState(2, 1, 4))
    before = all_entries(store)
    with pytest.raises(error):
        store.save(entries=bad, hard_state=HardState(3, 0, 4))
    assert all_entries(store) == before
    assert store.initial_state()[0] == HardState(2, 1, 4)


def test_committed_entries_may_be_rewritten_identically(store: LogStore) -> None:
    store.save(entries=ents(1, 6, 1), hard_state=HardState(1, 0, 5))
    store.save(entries=ents(3, 8, 1))
    assert all_entries(store) == ents(1, 8, 1)


@pytest.mark.parametrize(
    "hs",
    [
        HardState(term=4, vote=1, commit=3),  # term decreases
        HardState(term=5, vote=3, commit=3),  # second vote in term 5
        HardState(term=5, vote=2, commit=2),  # commit decreases
        HardState(term=5, vote=2, commit=11),  # commit beyond the log
    ],
)
def test_bad_hard_state_is_rejected(store: LogStore, hs: HardState) -> None:
    store.save(entries=ents(1, 11, 1), hard_state=HardState(term=5, vote=2, commit=3))
    with pytest.raises(ValueError):
        store.save(hard_state=hs)
    assert store.initial_state()[0] == HardState(term=5, vote=2, commit=3)


def test_hard_state_may_vote_once_per_term_and_move_on(store: LogStore) -> None:
    store.save(hard_state=HardState(term=1, vote=0))
    store.save(hard_state=HardState(term=1, vote=3))
    store.save(hard_state=HardState(term=1, vote=3))
    store.save(hard_state=HardState(term=2, vote=0))
    assert store.initial_state()[0] == HardState(term=2, vote=0, commit=0)


def test_compact_drops_the_prefix(store: LogStore) -> None:
    store.save(entries=ents(1, 11, 1) + ents(11, 13, 2), hard_state=HardState(2, 0, 12))
    store.save_conf_state(CS)
    meta = SnapshotMeta(index=10, term=1, conf_state=ConfState(voters=frozenset({1})))
    store.compact(meta)
    assert store.snapshot_meta() == meta
    assert (store.first_index(), store.last_index()) == (11, 12)
    assert store.term(10) == 1
    assert store.initial_state()[1] == CS  # the saved membership is newer: kept
    with pytest.raises(Compacted):
        store.term(9)
    with pytest.raises(Compacted):
        store.entries(10, 12)
    assert store.entries(11, 13) == ents(11, 13, 2)
    with pytest.raises(Compacted):
        store.compact(SnapshotMeta(index=10, term=1))
    with pytest.raises(Unavailable):
        store.compact(SnapshotMeta(index=13, term=2))
    with pytest.raises(ValueError):
        store.compact(SnapshotMeta(index=12, term=1))
    with pytest.raises(Compacted):
        store.save(entries=ents(10, 11, 2))
    store.compact(SnapshotMeta(index=12, term=2))
    assert (store.first_index(), store.last_index()) == (13, 12)
    assert store.entries(13, 13) == []
    store.save(entries=ents(13, 14, 3))
    assert store.entries(13, 14) == ents(13, 14, 3)


def test_snapshot_matching_the_log_keeps_the_suffix(store: LogStore) -> None:
    store.save(entries=ents(1, 6, 1) + ents(6, 11, 2), hard_state=HardState(2, 0, 3))
    meta = SnapshotMeta(index=7, term=2, conf_state=CS)
    store.save(snapshot=meta, hard_state=HardState(2, 0, 7))
    assert store.snapshot_meta() == meta
    assert store.initial_state() == (HardState(2, 0, 7), CS)
    assert (store.first_index(), store.last_index()) == (8, 10)
    assert store.entries(8, 11) == ents(8, 11, 2)
    assert store.term(7) == 2


def test_snapshot_not_in_the_log_replaces_it(store: LogStore) -> None:
    store.save(entries=ents(1, 11, 1), hard_state=HardState(1, 0, 3))
    meta = SnapshotMeta(index=7, term=3, conf_state=CS)
    # one Ready: snapshot, then entries after it, then hard state
    store.save(snapshot=meta, entries=ents(8, 10, 3), hard_state=HardState(3, 2, 9))
    assert store.initial_state() == (HardState(3, 2, 9), CS)
    assert (store.first_index(), store.last_index()) == (8, 9)
    assert store.entries(8, 10) == ents(8, 10, 3)
    assert store.term(7) == 3
    with pytest.raises(ValueError):
        store.save(snapshot=SnapshotMeta(index=7, term=3))  # not newer
    far = SnapshotMeta(index=100, term=4)
    store.save(snapshot=far)
    assert (store.first_index(), store.last_index()) == (101, 100)
    assert store.term(100) == 4
    with pytest.raises(Unavailable):
        store.save(entries=ents(102, 103, 4))
    store.save(entries=ents(101, 103, 4), hard_state=HardState(4, 0, 102))
    assert store.entries(101, 103) == ents(101, 103, 4)


def test_save_conf_state(kit: Kit, store: LogStore, tmp_path: Path) -> None:
    store.save_conf_state(CS)
    assert store.initial_state() == (HardState(), CS)
    joint = ConfState(voters=frozenset({1, 4}), learners=frozenset({5}), voters_outgoing=CS.voters)
    store.save_conf_state(joint)
    assert store.initial_state()[1] == joint
    retired = ConfState(voters=frozenset({1, 2, 6}), removed=frozenset({3, 4}))
    store.save_conf_state(retired)
    s = reopen(kit, store, tmp_path / "db")
    try:
        assert s.initial_state()[1] == retired, "removed ids survive a restart"
    finally:
        s.close()


def test_closed_store_refuses_calls(store: LogStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError):
        store.last_index()
    with pytest.raises(StorageError):
        store.save(entries=ents(1, 2, 1))


def test_disk_size_grows_with_the_log(store: LogStore) -> None:
    before = store.disk_size()
    store.save(entries=ents(1, 2001, 1, size=500))
    assert store.disk_size() >= before + 2000 * 500
