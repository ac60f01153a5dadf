"""A leader's answers at commit time, from results predicted while the entry replicated.

At low load a proposer waits, after its entry commits, for the leader's I/O thread to
pick the apply up and hand the result back to the event loop. The result does not need
the apply: it depends only on the state right before the entry and on the entry (the
state machine is deterministic), and by the time a leader has written a new entry to its
log, usually everything before it is applied. So right behind the write of a small
Ready of entries proposed here, the I/O thread runs the state machine's dry run over
them (``PredictingStateMachine.predict``: a read view, nothing written). The dry run is a
job of its own: the driver goes on as soon as the write is durable (a leader's own write
gates its next Ready, so nothing else may ride on it). When those entries commit, the
driver waits for their dry run if it is still running (it is ahead of any apply on the
I/O thread anyway) and answers their proposers at once, before the apply starts. An
(index, term) names one entry on every node (Log Matching), so a kept result stays right
whatever happens in between; a proposal is only answered by a result kept for its own
index and term.

Nothing else moves early: ``applied``, reads and snapshots still wait for the apply,
exactly as with the state machine's ``staged`` answers. The apply's real results are
checked against the predictions; a difference means the state machine is not
deterministic, which is fatal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kvraft.core.types import Entry
from kvraft.runtime.base import PredictingStateMachine
from kvraft.runtime.waiters import ProposalTracker

Predicted = list[tuple[Entry, object | None, bytes]]
"""Entries with their predicted results and comparison keys."""

MAX_ENTRIES = 4
"""Predict Readys of at most this many entries (more: the apply's ``staged`` answers
them; a larger dry run would only delay the write of the next Ready)."""


class Predictions:
    """Predicted results by log index. The driver task alone uses this object (the dry
    run itself runs on the I/O thread: ``start``)."""

    def __init__(self, machine: PredictingStateMachine | None) -> None:
        self._sm = machine  # None: the state machine cannot predict; nothing happens
        self._by_index: dict[int, tuple[int, object | None, bytes]] = {}  # term, result, key
        self._given: dict[int, tuple[int, bytes]] = {}  # answered, not yet applied: term, key
        # dry runs in progress, oldest first: each job and the last index it covers
        self._running: list[tuple[asyncio.Future[Predicted], int]] = []

    def wanted(self, entries: Sequence[Entry], proposals: ProposalTracker) -> Sequence[Entry]:
        """The entries worth a dry run after this Ready's write: a few, with a proposer
        waiting here on at least one of them (``()``: none)."""
        if self._sm is None or not entries or len(entries) > MAX_ENTRIES:
            return ()
        if not any(proposals.waiting(e.index, e.term) for e in entries):
            return ()
        return entries

    def start(
        self, entries: Sequence[Entry],
        in_io: Callable[[Callable[[Sequence[Entry]], Predicted], Sequence[Entry]],
                        asyncio.Future[Predicted]],
    ) -> None:
        """Queue the dry run of ``entries`` on the I/O thread (right behind the write
        just queued there, so it sees everything before them applied)."""
        if entries:
            self._harvest()
            self._running.append((in_io(self._dry_run, entries), entries[-1].index))

    def _dry_run(self, entries: Sequence[Entry]) -> Predicted:
        """I/O thread: the dry run, with each result's comparison key."""
        sm = self._sm
        assert sm is not None
        try:
            results = sm.predict(entries)
        except Exception:  # noqa: BLE001 - predicts nothing; a storage failure shows in the apply
            return []
        return [(e, r, sm.result_key(r)) for e, r in zip(entries, results, strict=False)]

    def _harvest(self) -> None:
        """Keep the results of the dry runs that finished (the I/O thread runs them in
        order)."""
        while self._running and self._running[0][0].done():
            fut = self._running.pop(0)[0]
            if not fut.cancelled() and fut.exception() is None:
                for e, result, key in fut.result():
                    self._by_index[e.index] = (e.term, result, key)

    async def settle(
        self, committed: Sequence[Entry],
        wait: Callable[[asyncio.Future[Predicted]], Awaitable[Any]],
    ) -> None:
        """Before answering ``committed``: let a dry run that covers some of them finish
        (``wait``: the driver's way to await an I/O job)."""
        covering = [f for f, last in self._running if committed and committed[0].index <= last]
        if covering and not covering[-1].done():
            await wait(covering[-1])  # the I/O thread runs them in order: all are done then
        self._harvest()

    def answer(self, committed: Sequence[Entry], proposals: ProposalTracker) -> int:
        """Answer the proposers of ``committed`` entries that have a kept result; returns
        how many were answered."""
        if not self._by_index:
            return 0
        answered = 0
        for e in committed:
            kept = self._by_index.pop(e.index, None)
            if kept is not None and kept[0] == e.term and proposals.waiting(e.index, e.term):
                self._given[e.index] = (e.term, kept[2])
                proposals.applied(e.index, e.term, kept[1])
                answered += 1
        return answered

    def check(self, applied: Sequence[Entry], results: Sequence[Any]) -> None:
        """The apply of ``applied`` returned ``results`` (objects nobody else has seen
        when their proposer was answered from a prediction): raise if a result given to a
        proposer differs from the real one; forget everything kept up to the last entry."""
        if self._given:
            assert self._sm is not None
            for e, r in zip(applied, results, strict=True):
                given = self._given.pop(e.index, None)
                if given is not None and given != (e.term, self._sm.result_key(r)):
                    raise AssertionError(
                        f"entry {e.index} (term {e.term}) applied with a result other than "
                        "the one predicted and already given to its proposer: the state "
                        "machine is not deterministic"
                    )
        last = applied[-1].index
        for kept in (self._by_index, self._given):
            for i in [i for i in kept if i <= last] if kept else ():
                del kept[i]

    def clear(self) -> None:
        """Forget every kept result (the state was replaced by a snapshot)."""
        self._by_index.clear()
        self._given.clear()
        self._running.clear()
