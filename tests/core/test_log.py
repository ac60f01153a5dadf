from __future__ import annotations

import pytest

from kvraft.core.log import RaftLog
from kvraft.core.types import Entry, HardState, SnapshotMeta
from kvraft.errors import Compacted, Unavailable
from tests.core.harness import MemStore


def ents(first: int, *terms: int, data: bytes = b"") -> list[Entry]:
    return [Entry(t, first + k, data=data) for k, t in enumerate(terms)]


def store_with(*terms: int) -> MemStore:
    s = MemStore([1, 2, 3])
    s.save(entries=ents(1, *terms), hard_state=HardState(term=max(terms, default=0)))
    return s


def test_view_spans_store_and_unstable() -> None:
    log = RaftLog(store_with(1, 1, 2), applied=0)
    log.append(ents(4, 3, 3))
    assert log.last_index() == 5 and log.persisted_index() == 3
    assert [log.term(i) for i in range(0, 6)] == [0, 1, 1, 2, 3, 3]
    assert [e.index for e in log.entries(2, 6)] == [2, 3, 4, 5]
    with pytest.raises(Unavailable):
        log.term(6)
    with pytest.raises(Unavailable):
        log.entries(5, 7)


def test_entries_respect_max_bytes_but_return_at_least_one() -> None:
    s = MemStore([1])
    s.save(entries=ents(1, 1, 1, 1, data=b"x" * 76))  # 100 bytes each
    log = RaftLog(s, applied=0)
    log.append(ents(4, 1, 1, data=b"x" * 76))
    assert len(log.entries(1, 6, max_bytes=250)) == 2
    assert len(log.entries(3, 6, max_bytes=250)) == 2, "limit spans store and unstable"
    assert len(log.entries(1, 6, max_bytes=1)) == 1


def test_compacted_prefix_raises() -> None:
    s = store_with(1, 1, 2, 2)
    s.compact(SnapshotMeta(2, 1))
    log = RaftLog(s, applied=2)
    assert log.term(2) == 1 and log.first_index() == 3
    with pytest.raises(Compacted):
        log.term(1)
    with pytest.raises(Compacted):
        log.entries(2, 4)


def test_maybe_append_truncates_conflicts_and_limits_commit() -> None:
    log = RaftLog(store_with(1, 1, 2, 2), applied=0)
    assert log.maybe_append(2, 9, 10, ents(3, 3)) is None, "prev term mismatch"
    assert log.maybe_append(2, 1, 10, ents(3, 3, 3)) == 4
    assert [log.term(i) for i in range(1, 5)] == [1, 1, 3, 3]
    assert log.committed == 4, "commit = min(leader commit, last new)"
    # entries 3..4 overwrite stored ones: only they are unstable
    assert log.offset == 3
    assert [e.index for e in log.take_unstable()] == [3, 4]


def test_duplicate_append_keeps_the_log() -> None:
    log = RaftLog(store_with(1, 1, 2), applied=0)
    assert log.maybe_append(1, 1, 0, ents(2, 1)) == 2
    assert log.last_index() == 3 and not log.has_unhanded(), "no truncation of a matching log"


def test_overwrite_while_handed_out_is_not_marked_durable() -> None:
    log = RaftLog(store_with(1), applied=0)
    log.append(ents(2, 1, 1, 1))
    handed = log.take_unstable()
    assert [e.index for e in handed] == [2, 3, 4]
    # before advance, a new leader overwrites from index 3
    log.truncate_and_append(ents(3, 2))
    assert [e.index for e in log.take_unstable()] == [3]
    log.stable_to(handed[-1].index, handed[-1].term)  # advance of the first Ready
    assert log.offset == 2, "entry 4/1 was overwritten: nothing becomes stable"
    log.stable_to(3, 2)
    assert log.offset == 4 and log.persisted_index() == 3


def test_find_conflict_by_term_skips_whole_terms() -> None:
    log = RaftLog(store_with(1, 1, 1, 4, 4, 5, 5, 5), applied=0)
    assert log.find_conflict_by_term(8, 3) == (3, 1)
    assert log.find_conflict_by_term(8, 5) == (8, 5)
    assert log.find_conflict_by_term(20, 4) == (5, 4), "clamped to the last index"
    assert log.find_conflict_by_term(8, 0) == (0, 0)


def test_restore_snapshot_replaces_log_until_durable() -> None:
    log = RaftLog(store_with(1, 1), applied=1)
    meta = SnapshotMeta(10, 3)
    log.restore(meta)
    assert log.last_index() == 10 and log.term(10) == 3 and log.committed == 10
    with pytest.raises(Compacted):
        log.term(5)
    assert log.take_snapshot() == meta and log.take_snapshot() is None
    assert log.take_committed(1 << 20) == (), "nothing below the snapshot is applied"


def test_committed_entries_only_once_durable() -> None:
    store = store_with(1, 1)
    log = RaftLog(store, applied=0)
    log.append(ents(3, 1))
    log.commit_to(3)
    assert [e.index for e in log.take_committed(1 << 20)] == [1, 2]
    assert log.take_committed(1 << 20) == (), "already handed out"
    store.save(entries=log.take_unstable())
    log.stable_to(3, 1)
    assert [e.index for e in log.take_committed(1 << 20)] == [3]


def test_applied_beyond_log_is_refused() -> None:
    with pytest.raises(ValueError, match="lost entries"):
        RaftLog(store_with(1), applied=5)


def test_find_conflict_by_term_matches_a_linear_scan() -> None:
    terms = [1] * 40 + [3] * 25 + [4] + [7] * 30
    s = store_with(*terms)
    s.compact(SnapshotMeta(10, 1))
    log = RaftLog(s, applied=10)
    for index in range(10, len(terms) + 3):
        for term in range(0, 9):
            i = min(index, len(terms))
            while i > 10 and terms[i - 1] > term:
                i -= 1
            expected = (i, log.term(i)) if log.term(i) <= term else (10, 0)
            assert log.find_conflict_by_term(index, term) == expected, (index, term)
