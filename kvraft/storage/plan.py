"""Validation shared by every LogStore: turn a save()/compact() request into a checked
plan before anything is written, so both implementations enforce the same contract
(kvraft/storage/base.py) and a rejected write leaves the store untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kvraft.core.types import Entry, HardState, SnapshotMeta
from kvraft.errors import Compacted, Unavailable


@dataclass(frozen=True, slots=True)
class LogBounds:
    """What a store knows about its log before a write."""

    snapshot: SnapshotMeta  # latest snapshot; first index == snapshot.index + 1
    last_index: int  # last stored entry, or snapshot.index if the log is empty
    hard_state: HardState  # last saved hard state


@dataclass(frozen=True, slots=True)
class SavePlan:
    """A validated save(): apply in field order."""

    snapshot: SnapshotMeta | None  # install first, if not None
    keep_log: bool  # with a snapshot: True -> drop entries <= snapshot.index only
    entries: Sequence[Entry]  # then write these; then delete stored entries > last_index
    hard_state: HardState | None  # then store this, if not None
    first_index: int  # first index after the save
    last_index: int  # last index after the save


def plan_save(
    cur: LogBounds,
    term_at: Callable[[int], int],
    entries: Sequence[Entry],
    hard_state: HardState | None,
    snapshot: SnapshotMeta | None,
) -> SavePlan:
    """Check a save() request against the contract in LogStore.save.

    ``term_at(i)`` answers for cur.snapshot.index + 1 <= i <= cur.last_index (the stored
    entries). Raises ValueError / Compacted / Unavailable as documented there.
    """
    snap = cur.snapshot
    last = cur.last_index
    keep_log = False
    if snapshot is not None:
        if snapshot.index <= snap.index:
            raise ValueError(
                f"stale snapshot: index {snapshot.index} <= current snapshot index {snap.index}"
            )
        keep_log = snapshot.index <= last and term_at(snapshot.index) == snapshot.term
        if not keep_log:
            last = snapshot.index
        snap = snapshot
    if entries:
        start = entries[0].index
        for prev, ent in zip(entries, entries[1:], strict=False):
            if ent.index != prev.index + 1:
                raise ValueError(f"entries not contiguous: {prev.index} then {ent.index}")
            if ent.term < prev.term:
                raise ValueError(f"entry {ent.index} term {ent.term} < previous {prev.term}")
        if start <= snap.index:
            raise Compacted(f"cannot write entry {start}: log compacted up to {snap.index}")
        if start > last + 1:
            raise Unavailable(f"cannot write entry {start}: gap after last index {last}")
        prev_term = snap.term if start - 1 == snap.index else term_at(start - 1)
        if entries[0].term < prev_term:
            raise ValueError(
                f"entry {start} term {entries[0].term} < term {prev_term} of entry {start - 1}"
            )
        commit = cur.hard_state.commit
        for ent in entries:
            if ent.index > min(commit, last):
                break
            if term_at(ent.index) != ent.term:
                raise ValueError(
                    f"entry {ent.index} (term {ent.term}) would overwrite committed entry "
                    f"of term {term_at(ent.index)} (commit {commit})"
                )
        last = entries[-1].index
    if hard_state is not None:
        check_hard_state(cur.hard_state, hard_state, last)
    return SavePlan(
        snapshot=snapshot,
        keep_log=keep_log,
        entries=entries,
        hard_state=hard_state,
        first_index=snap.index + 1,
        last_index=last,
    )


def check_hard_state(old: HardState, new: HardState, last_index: int) -> None:
    """Raise ValueError if ``new`` cannot follow ``old`` on a log ending at last_index."""
    if new.term < old.term:
        raise ValueError(f"hard state term would decrease: {old.term} -> {new.term}")
    if new.term == old.term and old.vote and new.vote != old.vote:
        raise ValueError(f"second vote in term {new.term}: {old.vote} -> {new.vote}")
    if new.commit < old.commit:
        raise ValueError(f"commit would decrease: {old.commit} -> {new.commit}")
    if new.commit > last_index:
        raise ValueError(f"commit {new.commit} beyond last index {last_index}")


def check_compact(cur: LogBounds, term_at: Callable[[int], int], meta: SnapshotMeta) -> None:
    """Check a compact(meta) request against the contract in LogStore.compact."""
    if meta.index <= cur.snapshot.index:
        raise Compacted(
            f"already compacted: index {meta.index} <= snapshot index {cur.snapshot.index}"
        )
    if meta.index > cur.last_index:
        raise Unavailable(f"cannot compact to {meta.index}: last index is {cur.last_index}")
    if term_at(meta.index) != meta.term:
        raise ValueError(
            f"snapshot term {meta.term} != term {term_at(meta.index)} of entry {meta.index}"
        )


def limit_size(ents: list[Entry], max_bytes: int | None) -> list[Entry]:
    """The longest prefix of ``ents`` (at least one entry) whose total Entry.size() is
    <= max_bytes; all of ``ents`` if max_bytes is None."""
    if max_bytes is None or not ents:
        return ents
    total = 0
    for k, ent in enumerate(ents):
        total += ent.size()
        if total > max_bytes and k > 0:
            return ents[:k]
    return ents
