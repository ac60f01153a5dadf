"""The LogStore protocol: the durable half of the Raft log and its persistent state.

A LogStore holds what one node has made durable:

- the log: entries with contiguous indexes in [first_index(), last_index()];
- the metadata of the latest snapshot, which stands for every entry <= its index
  (first_index() == snapshot_meta().index + 1);
- the hard state (term, vote, commit) and the membership (ConfState).

Who calls what
- The Raft core only reads, through :class:`kvraft.core.types.LogReader` (a subset of this
  protocol). It never writes.
- The runtime writes: ``save()`` once per Ready (step 1 of the Ready loop), ``compact()``
  after the state machine took a snapshot, ``save_conf_state()`` when it applies a
  membership change.

Concurrency: a store has ONE writer (the runtime's persistence thread). Readers (the core,
on the event loop) may call the LogReader methods while a ``save()`` is in progress; they
see either the state before it or after it, never a half-applied one. Writers must not
call ``save``/``compact``/``save_conf_state`` concurrently with each other.

Durability: when ``save``/``compact``/``save_conf_state`` returns, the write is on disk
(fsync) and survives ``kill -9`` and power loss; if the process dies during the call, the
store reopens either with all of it or with none of it.

Errors (all from :mod:`kvraft.errors`)
- ``Compacted``: an index below first_index() (or at/below the snapshot for writes).
- ``Unavailable``: an index above last_index().
- ``Corrupted``: a stored record failed its checksum or could not be decoded; the message
  names the database and the index/key. Never retry: the node must not serve or campaign.
- ``StorageError``: the disk or the database failed (full map, I/O error).
- ``ValueError``: the caller broke the contract (non-contiguous entries, a decreasing term,
  a second vote in one term, overwriting a committed entry, commit beyond the log). Such
  a write is rejected before anything is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kvraft.core.types import ConfState, Entry, HardState, LogReader, SnapshotMeta


class LogStore(LogReader, Protocol):
    """Durable Raft log + hard state + membership + snapshot metadata of one node.

    Read methods (inherited from LogReader, restated here with their exact contract):

    - ``initial_state() -> (HardState, ConfState)``: the last saved hard state
      (``HardState()`` on a fresh store) and membership (``ConfState()`` on a fresh store;
      replaced by an installed snapshot's conf_state, or by ``save_conf_state``).
    - ``entries(lo, hi, max_bytes=None) -> list[Entry]``: entries with index in [lo, hi),
      in order. If lo < hi at least one entry is returned, then entries are added while
      the sum of ``Entry.size()`` stays <= max_bytes. ``lo == hi`` returns []. Raises
      Compacted if lo < first_index(), Unavailable if hi > last_index() + 1, ValueError if
      lo > hi. The returned list is the caller's to keep.
    - ``term(i) -> int``: valid for first_index() - 1 <= i <= last_index(); i ==
      first_index() - 1 is answered from the snapshot metadata (0 for index 0). Raises
      Compacted below, Unavailable above. O(1) in practice (no disk read).
    - ``first_index()``: snapshot_meta().index + 1, even when the log is empty.
    - ``last_index()``: index of the last entry, or snapshot_meta().index if none.
    - ``snapshot_meta()``: the latest snapshot's metadata (``SnapshotMeta()`` if none).
    """

    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
    ) -> None:
        """Persist one Ready in ONE durable write (group commit: one transaction, one
        fsync, however many entries). All or nothing, also across a crash.

        Applied in this order:

        1. ``snapshot`` (a snapshot received from the leader, whose data the application
           has already restored): ``snapshot.index`` must be > snapshot_meta().index
           (ValueError otherwise). It becomes snapshot_meta(); the membership becomes
           ``snapshot.conf_state``. If the log holds (snapshot.index, snapshot.term), the
           entries after it are kept and those <= it dropped; otherwise the whole log is
           dropped and last_index() becomes snapshot.index.
        2. ``entries``: contiguous indexes, non-decreasing terms, the first term >= the term
           of the entry before it. ``entries[0].index`` must be in
           [first_index(), last_index() + 1] (after step 1): Compacted below, Unavailable
           above (a gap). Every stored entry >= entries[0].index is replaced: the stored
           suffix beyond the new entries is truncated. A stored entry <= the stored commit
           index may only be "replaced" by an identical-term entry (ValueError otherwise).
        3. ``hard_state``: its term must not decrease, a vote already cast in the same term
           must not change, commit must not decrease and must be <= last_index() after
           steps 1-2 (ValueError otherwise).

        Raises StorageError if the disk write fails; the store's contents are then those
        before the call.
        """
        ...

    def compact(self, meta: SnapshotMeta) -> None:
        """Record a snapshot the application took locally at ``meta.index`` (an index it
        has applied) and drop every entry <= meta.index. Durable on return.

        ``meta.term`` must equal term(meta.index) (ValueError otherwise). Raises Compacted
        if meta.index <= snapshot_meta().index (already compacted that far: callers may
        ignore it), Unavailable if meta.index > last_index(). The membership saved with
        ``save_conf_state`` is left as it is (it is at least as new as the snapshot's).
        """
        ...

    def save_conf_state(self, cs: ConfState) -> None:
        """Durably record the membership in force; initial_state() returns it from now
        on (until an installed snapshot replaces it)."""
        ...

    def disk_size(self) -> int:
        """Approximate bytes the store occupies, for status and metrics: the LMDB
        environment's used pages (all sub-databases) on disk; for the memory store, the
        sum of Entry.size() of the log."""
        ...

    def close(self) -> None:
        """Release the store's resources. Idempotent. Any other call afterwards raises
        StorageError."""
        ...
