"""A leader's answers at commit time, from results predicted while the entry replicated.

At low load a proposer waits, after its entry commits, for the leader's I/O thread to
pick the apply up and hand the result back to the event loop. The result does not need
the apply: it depends only on the state right before the entry and on the entry (the
state machine is deterministic), and by the time a leader has written a new entry to its
log, usually everything before it is applied. So once the write of a small Ready of
entries proposed here is durable, the driver runs the state machine's dry run over them
(``PredictingStateMachine.predict``: a read view, nothing written) on the event loop,
which at low load has nothing else to do while the followers write: no hand-off to the
I/O thread and back, no contention for the GIL with it. When those entries commit, it
answers their proposers at once, before the apply starts. An (index, term) names one
entry on every node (Log Matching), so a kept result stays right whatever happens in
between; a proposal is only answered by a result kept for its own index and term.

Nothing else moves early: ``applied``, reads and snapshots still wait for the apply,
exactly as with the state machine's ``staged`` answers. The apply's real results are
checked against the predictions; a difference means the state machine is not
deterministic, which is fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kvraft.core.types import Entry
from kvraft.runtime.base import PredictingStateMachine
from kvraft.runtime.waiters import ProposalTracker

MAX_ENTRIES = 4
"""Predict Readys of at most this many entries (more: the apply's ``staged`` answers
them; a larger dry run would only delay the next Ready)."""


class Predictions:
    """Predicted results by log index. The driver task alone uses this object."""

    def __init__(self, machine: PredictingStateMachine | None) -> None:
        self._sm = machine  # None: the state machine cannot predict; nothing happens
        self._by_index: dict[int, tuple[int, object | None, bytes]] = {}  # term, result, key
        self._given: dict[int, tuple[int, bytes]] = {}  # answered, not yet applied: term, key

    def wanted(self, entries: Sequence[Entry], proposals: ProposalTracker) -> Sequence[Entry]:
        """The entries worth a dry run after this Ready's write: a few, with a proposer
        waiting here on at least one of them (``()``: none)."""
        if self._sm is None or not entries or len(entries) > MAX_ENTRIES:
            return ()
        if not any(proposals.waiting(e.index, e.term) for e in entries):
            return ()
        return entries

    def run(self, entries: Sequence[Entry]) -> None:
        """The dry run of ``entries`` (``wanted``, durable, proposed here); keeps the
        results with their comparison keys."""
        sm = self._sm
        if not entries or sm is None:
            return
        try:
            results = sm.predict(entries)
        except Exception:  # noqa: BLE001 - predicts nothing; a storage failure shows in the apply
            return
        for e, r in zip(entries, results, strict=False):
            self._by_index[e.index] = (e.term, r, sm.result_key(r))

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
            for i in [i for i in kept if i <= last]:
                del kept[i]

    def clear(self) -> None:
        """Forget every kept result (the state was replaced by a snapshot)."""
        self._by_index.clear()
        self._given.clear()
