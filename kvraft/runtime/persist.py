"""Persisting a Ready: which hard state to write, and the durable writes themselves.

Used by the driver (driver.py), which decides WHEN to write (step 2 of its Ready loop)
and on which thread; this module says WHAT one write holds.

- **Hard state rides along.** A change of the commit index alone is not written on its
  own (``hard_state_to_save``); it waits for the next write that must be durable.
- **One write per Ready** (``persist``): restore a received snapshot into the state
  machine first, then entries, hard state and snapshot metadata in one durable save
  (one fsync: group commit).
- **One transaction per Ready** (``persist_joined``; ``JointStateMachine``: the KV state
  in the LMDB log store's own environment). When a Ready without a snapshot has both
  something to persist and committed entries, the save and the apply are ONE durable
  transaction: entries, hard state, then the state machine's writes and applied index
  (one fsync pair instead of two). This is sound because committed entries are durable
  in the log since an EARLIER Ready (the core hands out only entries below its unstable
  offset), so the apply never depends on this Ready's writes, and a crash before the
  commit leaves the state at the previous applied index with the entries still in the
  log to replay. ``persisted_messages`` leave, and applied/reads move, only after the
  commit. A Ready carrying a snapshot keeps the two-step path (its restore replaces the
  state first), and so does every follower Ready: its append acks (what the leader waits
  for) leave after a write of the log alone -- fewer pages to flush, no apply work in
  front of them -- and the apply follows in a write of its own. (With lazy commit a
  follower learns that wave k committed from the AppendEntries of wave k+1; joined, the
  apply of wave k would sit in front of the ack of wave k+1.) Only a leader joins: its
  answers leave before the commit anyway (``staged``), and it saves the second fsync pair.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import cast

from kvraft.core.types import ConfState, Entry, HardState, Ready
from kvraft.runtime.base import DurableLog, JointApplyFn, JointLog, LocalSnapshot, StateMachine


class ReadyWriter:
    """The durable half of a Ready, for one driver.

    ``hard_state_to_save`` and ``saved`` run on the driver task; ``persist`` and
    ``persist_joined`` only on the driver's single I/O thread, one at a time, in Ready
    order. Errors from the log or the state machine propagate (they are fatal)."""

    def __init__(self, log: DurableLog, state: StateMachine) -> None:
        self._log = log  # written only on the I/O thread
        self._sm = state  # restore_snapshot called only on the I/O thread
        self._saved_hard = log.initial_state()[0]  # hard state as last written to the log
        self._unsaved_hard: HardState | None = None  # newer commit-only hard state, unwritten

    def hard_state_to_save(self, rd: Ready) -> HardState | None:
        """The hard state to persist with this Ready, or None.

        Like etcd (raft.MustSync), a change of the commit index alone is not written on
        its own: the commit index may be lost in a crash (the core recovers it from the
        leader and from the applied index), so it rides along with the next write that
        must be durable -- new entries, a snapshot, or a new term or vote (which must be
        on disk before any message that depends on them)."""
        hs = rd.hard_state or self._unsaved_hard
        if hs is None:
            return None
        saved = self._saved_hard
        if rd.entries or rd.snapshot is not None or (hs.term, hs.vote) != (saved.term, saved.vote):
            return hs
        self._unsaved_hard = hs  # commit only: wait for the next durable write
        return None

    def saved(self, hard: HardState | None) -> None:
        """Driver task: a write holding ``hard`` (None: no hard state) is durable."""
        self._saved_hard = hard or self._saved_hard
        self._unsaved_hard = None

    def persist(
        self, rd: Ready, hard: HardState | None, received: Sequence[str]
    ) -> LocalSnapshot | None:
        """I/O thread: restore a received snapshot (``received[0]``; the rest are older
        received files to delete), then one durable save of the Ready."""
        installed = None
        if rd.snapshot is not None:
            installed = self._sm.restore_snapshot(received[0], rd.snapshot)
            for stale in received[1:]:  # superseded transfers: never installed
                with contextlib.suppress(OSError):
                    os.unlink(stale)
        self._log.save(entries=rd.entries, hard_state=hard, snapshot=rd.snapshot)
        return installed

    def persist_joined(
        self, rd: Ready, hard: HardState | None, joint: JointApplyFn,
        committed: Sequence[Entry], conf_state: ConfState,
        staged: Callable[[Sequence[object | None]], None],
    ) -> Sequence[object | None]:
        """I/O thread: one durable transaction holding the Ready's entries and hard state,
        then the apply of ``committed`` with the applied index and ``conf_state``; returns
        the apply's results. ``staged`` may answer proposers before the commit only
        because ``committed`` was durable in the log before this transaction began."""
        first_new = rd.entries[0].index if rd.entries else None
        if first_new is not None and committed[-1].index >= first_new:
            raise AssertionError(
                f"committed entry {committed[-1].index} handed out before it was durable "
                f"(this Ready persists entries from {first_new})"
            )
        out: list[Sequence[object | None]] = []

        def extra(txn: object) -> None:
            out.append(joint(txn, committed, conf_state, staged))

        cast(JointLog, self._log).save(entries=rd.entries, hard_state=hard, extra=extra)
        assert len(out) == 1, "the log store did not run the apply in its transaction"
        return out[0]
