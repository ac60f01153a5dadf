"""MemoryLogStore: the reference LogStore, kept in memory (simulator and tests).

"Durable" here means "survives the RawNode": a simulated crash throws the core away and
builds a new one over the same store, which then holds exactly what was saved. Every
write is validated by kvraft.storage.plan, so the simulator catches a core that breaks
the storage contract (e.g. votes twice in a term or overwrites a committed entry).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from kvraft.core.types import ConfState, Entry, HardState, SnapshotMeta
from kvraft.errors import Compacted, StorageError, Unavailable
from kvraft.storage.base import LogStore
from kvraft.storage.plan import LogBounds, check_compact, limit_size, plan_save


class MemoryLogStore:
    """A LogStore in memory. Thread-safe (one lock; every call is short)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards every field below
        self._snap = SnapshotMeta()  # latest snapshot; first index == _snap.index + 1
        self._ents: list[Entry] = []  # _ents[k].index == _snap.index + 1 + k (contiguous)
        self._hard = HardState()  # last saved hard state; commit <= last index
        self._conf = ConfState()  # membership: last saved or installed with a snapshot
        self._closed = False  # True after close(); every call then raises StorageError

    # ------------------------------------------------------------------ LogReader
    def initial_state(self) -> tuple[HardState, ConfState]:
        with self._lock:
            self._check_open()
            return self._hard, self._conf

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        with self._lock:
            self._check_open()
            if lo > hi:
                raise ValueError(f"entries: lo {lo} > hi {hi}")
            if lo <= self._snap.index:
                raise Compacted(f"entry {lo} compacted (first index {self._snap.index + 1})")
            last = self._snap.index + len(self._ents)
            if hi > last + 1:
                raise Unavailable(f"entry {hi - 1} unavailable (last index {last})")
            off = self._snap.index + 1
            out = self._ents[lo - off : hi - off]
        return limit_size(out, max_bytes)

    def term(self, index: int) -> int:
        with self._lock:
            self._check_open()
            return self._term(index)

    def first_index(self) -> int:
        with self._lock:
            self._check_open()
            return self._snap.index + 1

    def last_index(self) -> int:
        with self._lock:
            self._check_open()
            return self._snap.index + len(self._ents)

    def snapshot_meta(self) -> SnapshotMeta:
        with self._lock:
            self._check_open()
            return self._snap

    # ------------------------------------------------------------------ writes
    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
    ) -> None:
        with self._lock:
            self._check_open()
            plan = plan_save(self._bounds(), self._term, entries, hard_state, snapshot)
            if plan.snapshot is not None:
                cut = plan.snapshot.index - self._snap.index
                del self._ents[: cut if plan.keep_log else len(self._ents)]
                self._snap = plan.snapshot
                self._conf = plan.snapshot.conf_state
            if plan.entries:
                keep = plan.entries[0].index - (self._snap.index + 1)
                del self._ents[keep:]
                self._ents.extend(plan.entries)
            if plan.hard_state is not None:
                self._hard = plan.hard_state

    def compact(self, meta: SnapshotMeta) -> None:
        with self._lock:
            self._check_open()
            check_compact(self._bounds(), self._term, meta)
            del self._ents[: meta.index - self._snap.index]
            self._snap = meta

    def save_conf_state(self, cs: ConfState) -> None:
        with self._lock:
            self._check_open()
            self._conf = cs

    def disk_size(self) -> int:
        with self._lock:
            self._check_open()
            return sum(e.size() for e in self._ents)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("log store is closed")

    def _bounds(self) -> LogBounds:
        return LogBounds(self._snap, self._snap.index + len(self._ents), self._hard)

    def _term(self, index: int) -> int:
        """Caller holds the lock."""
        if index < self._snap.index:
            raise Compacted(f"term of {index}: compacted (snapshot index {self._snap.index})")
        if index == self._snap.index:
            return self._snap.term
        k = index - self._snap.index - 1
        if k >= len(self._ents):
            last = self._snap.index + len(self._ents)
            raise Unavailable(f"term of {index}: beyond last index {last}")
        return self._ents[k].term


def _conforms(s: MemoryLogStore) -> LogStore:
    return s  # mypy proves MemoryLogStore implements the LogStore protocol
