"""The Raft log as the core sees it: the durable log (read through ``LogReader``) plus the
entries and snapshot not yet known to be durable ("unstable"), and the commit/apply marks.

Index ranges::

    store (durable) ............ | unstable (handed out, then not yet) |
    first_index()     offset - 1 | offset  ... handed_out ... last_index()

- Entries with index < ``offset`` are durable and read from the store; a stored entry
  with index >= ``offset`` is stale (about to be overwritten) and never read.
- ``handed_out`` is the last unstable index given to the runtime in a Ready; those
  entries become durable (drop out of ``unstable``) only at ``advance``.
- A received snapshot waits in ``unstable_snapshot`` until it is durable; meanwhile
  every index <= its index counts as compacted.
- ``applied <= applying <= committed``; entries in (applying, min(committed, offset-1)]
  are the next ones to hand to the state machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvraft.core.types import Entry, LogReader, SnapshotMeta, extend_within
from kvraft.errors import Compacted, Unavailable


class RaftLog:
    """Log view over a ``LogReader`` plus in-memory unstable state (owned by the core)."""

    def __init__(self, store: LogReader, applied: int) -> None:
        hard_state, _ = store.initial_state()
        last = store.last_index()
        first = store.first_index()
        if applied < first - 1:
            raise ValueError(
                f"applied index {applied} is below the snapshot index {first - 1}: restore "
                "the state machine from the snapshot first"
            )
        if applied > last or hard_state.commit > last:
            raise ValueError(
                f"applied index {applied} / commit {hard_state.commit} beyond the last log "
                f"index {last}: the log store lost entries"
            )
        self.store = store  # Invariant: read-only from the core's side.
        self.unstable: list[Entry] = []  # Invariant: contiguous, unstable[k].index == offset + k.
        self.offset = last + 1  # Invariant: every entry below offset is durable in the store.
        self.unstable_snapshot: SnapshotMeta | None = None  # Received, not yet durable.
        self.snapshot_handed_out = False  # Invariant: unstable_snapshot was given in a Ready.
        self.handed_out = last  # Invariant: offset - 1 <= handed_out <= last_index().
        self.committed = max(hard_state.commit, applied)  # Invariant: <= last_index().
        self.applying = applied  # Invariant: applied <= applying <= committed.
        self.applied = applied  # Invariant: what the state machine has applied (advance).

    # ------------------------------------------------------------------ queries
    def last_index(self) -> int:
        return self.offset - 1 + len(self.unstable)

    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.index + 1
        return self.store.first_index()

    def persisted_index(self) -> int:
        """Last index known durable locally (a pending snapshot does not count)."""
        return self.offset - 1

    def snapshot_meta(self) -> SnapshotMeta:
        """The latest durable snapshot's metadata (what a leader can send)."""
        return self.store.snapshot_meta()

    def term(self, index: int) -> int:
        """Term of ``index``; raises Compacted below first_index()-1, Unavailable above
        last_index()."""
        offset = self.offset
        if index >= offset:
            k = index - offset
            if k < len(self.unstable):
                return self.unstable[k].term
            raise Unavailable(f"index {index} is beyond the last index {self.last_index()}")
        snap = self.unstable_snapshot
        if snap is not None:
            if index == snap.index:
                return snap.term
            raise Compacted(f"index {index} is before the pending snapshot at {snap.index}")
        return self.store.term(index)

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is (last_index, last_term) at least as up to date
        as this log?"""
        my_term = self.last_term()
        return last_term > my_term or (last_term == my_term and last_index >= self.last_index())

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries in [lo, hi): at least one if lo < hi, then stopping before the total
        size would exceed ``max_bytes``. Raises Compacted / Unavailable like LogReader."""
        if lo >= hi:
            return []
        if hi > self.last_index() + 1:
            raise Unavailable(f"entries up to {hi - 1} requested, last index {self.last_index()}")
        offset = self.offset
        out: list[Entry] = []
        size = 0
        if lo < offset:
            if self.unstable_snapshot is not None:
                raise Compacted(f"index {lo} is before the pending snapshot")
            stored_hi = min(hi, offset)
            out = self.store.entries(lo, stored_hi, max_bytes)
            if len(out) < stored_hi - lo or hi <= offset:
                return out
            if max_bytes is not None:
                size = sum(e.size() for e in out)
            lo = offset
        return extend_within(out, self.unstable[lo - offset : hi - offset], size, max_bytes)

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The largest index <= ``index`` whose term is <= ``term``, with that term; at
        the compacted boundary the answer is (first_index()-1, 0) if even that entry's
        term is larger. Terms never decrease along a log, so this is a binary search.
        Used for fast backtracking."""
        hi = min(index, self.last_index())
        lo = self.first_index() - 1
        if hi < lo:
            return hi, 0
        t = self.term(hi)
        if t <= term:
            return hi, t
        if self.term(lo) > term:
            return lo, 0
        while lo < hi - 1:  # Invariant: term(lo) <= term < term(hi)
            mid = (lo + hi) // 2
            if self.term(mid) <= term:
                lo = mid
            else:
                hi = mid
        return lo, self.term(lo)

    # ------------------------------------------------------------------ mutation
    def append(self, entries: Sequence[Entry]) -> None:
        """Leader append: ``entries`` continue the log exactly."""
        assert not entries or entries[0].index == self.last_index() + 1, "append gap"
        self.unstable.extend(entries)

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Follower append: ``entries[0].index`` may overwrite a suffix of the log."""
        first = entries[0].index
        assert first > self.committed, f"overwriting committed index {first}"
        assert first <= self.last_index() + 1, "truncate_and_append gap"
        if first == self.last_index() + 1:
            self.unstable.extend(entries)
        elif first <= self.offset:
            self.offset = first
            self.unstable = list(entries)
        else:
            del self.unstable[first - self.offset :]
            self.unstable.extend(entries)
        self.handed_out = min(self.handed_out, first - 1)

    def maybe_append(
        self, prev_index: int, prev_term: int, commit: int, entries: Sequence[Entry]
    ) -> int | None:
        """AppendEntries receiver rule: if the log holds (prev_index, prev_term), drop any
        conflicting suffix, append what is new, advance commit to min(commit, last new)
        and return the last new index; else return None."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        last = self.last_index()
        for k, e in enumerate(entries):
            if e.index > last or self.term(e.index) != e.term:
                self.truncate_and_append(entries[k:])
                break
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            assert index <= self.last_index(), f"commit {index} beyond log {self.last_index()}"
            self.committed = index

    def restore(self, meta: SnapshotMeta) -> None:
        """Replace the log with a received snapshot (durable only at advance)."""
        self.unstable_snapshot = meta
        self.snapshot_handed_out = False
        self.unstable = []
        self.offset = meta.index + 1
        self.handed_out = meta.index
        self.committed = meta.index
        self.applying = max(self.applying, meta.index)

    # ------------------------------------------------------------------ Ready support
    def has_unhanded(self) -> bool:
        return self.handed_out < self.last_index() or (
            self.unstable_snapshot is not None and not self.snapshot_handed_out
        )

    def take_unstable(self) -> tuple[Entry, ...]:
        """Entries not yet handed out; marks them handed out."""
        start = self.handed_out + 1 - self.offset
        out = tuple(self.unstable[start:])
        self.handed_out = self.last_index()
        return out

    def take_snapshot(self) -> SnapshotMeta | None:
        if self.unstable_snapshot is None or self.snapshot_handed_out:
            return None
        self.snapshot_handed_out = True
        return self.unstable_snapshot

    def has_committed_to_apply(self) -> bool:
        return self.applying < min(self.committed, self.offset - 1)

    def take_committed(self, max_bytes: int) -> tuple[Entry, ...]:
        """Committed, durable, not yet handed-out entries (at least one if any), bounded by
        ``max_bytes``; marks them as being applied."""
        hi = min(self.committed, self.offset - 1)
        if self.applying >= hi:
            return ()
        out = tuple(self.store.entries(self.applying + 1, hi + 1, max_bytes))
        self.applying = out[-1].index
        return out

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) are durable now (unless since overwritten)."""
        k = index - self.offset
        if 0 <= k < len(self.unstable) and self.unstable[k].term == term:
            del self.unstable[: k + 1]
            self.offset = index + 1

    def stable_snapshot_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.index == index:
            self.unstable_snapshot = None
            self.snapshot_handed_out = False

    def applied_to(self, index: int) -> None:
        assert index <= self.committed, f"applied {index} beyond commit {self.committed}"
        self.applied = max(self.applied, index)
        self.applying = max(self.applying, self.applied)
