"""Bookkeeping of the callers waiting on the driver: proposals and ReadIndex reads.

Pure (no I/O, no clock); the driver calls it from its event-loop task. Futures are
asyncio futures owned by the waiting caller; a caller may cancel its future at any time
(client deadline), so every resolution checks ``done()`` first.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass

from kvraft.runtime.errors import OutcomeUnknown, Overloaded


@dataclass(slots=True)
class _Proposal:
    term: int  # the leader term in which the entry was appended
    size: int  # bytes counted against the inflight budget
    future: asyncio.Future[object | None]  # resolved with the apply result


class ProposalTracker:
    """Proposals in flight: admitted (budget reserved), then appended at (index, term),
    then resolved when an entry at that index is applied.

    Resolution rule: the entry applied at the proposal's index carries the proposal's
    term -> the proposal's result; any other term -> the proposal was lost (outcome
    unknown, as the leader that appended it may have lost it or not).
    """

    def __init__(self, max_proposals: int, max_bytes: int) -> None:
        if max_proposals < 1 or max_bytes < 1:
            raise ValueError("inflight limits must be >= 1")
        self.max_proposals = max_proposals  # admission limit on `count`
        self.max_bytes = max_bytes  # admission limit on `bytes`
        self.count = 0  # admitted and not yet released; invariant: 0 <= count
        self.bytes = 0  # sum of sizes admitted and not yet released; invariant: >= 0
        self.succeeded = 0  # proposals resolved with their apply result (monotonic)
        self.failed = 0  # appended or refused proposals that failed (monotonic)
        self.overloaded = 0  # proposals refused by ``admit`` (monotonic)
        self._by_index: dict[int, _Proposal] = {}  # appended proposals by log index

    def admit(self, size: int) -> None:
        """Reserve budget for one proposal of ``size`` bytes or raise Overloaded.

        A single proposal larger than the whole byte budget is admitted when nothing else
        is in flight (it is refused later by the size limits, not starved here)."""
        if self.count >= self.max_proposals:
            self.overloaded += 1
            raise Overloaded(
                f"too many proposals in flight ({self.count}; the limit is "
                f"{self.max_proposals}): back off and retry"
            )
        if self.count and self.bytes + size > self.max_bytes:
            self.overloaded += 1
            raise Overloaded(
                f"too many bytes in flight ({self.bytes} + {size}; the limit is "
                f"{self.max_bytes}): back off and retry"
            )
        self.count += 1
        self.bytes += size

    def release(self, size: int, *, refused: bool = False) -> None:
        """Give back the budget of a proposal that was admitted but never appended
        (``refused``: because the core refused it, counted in ``failed``)."""
        self.failed += refused
        self.count -= 1
        self.bytes -= size
        assert self.count >= 0 and self.bytes >= 0, "proposal budget released twice"

    def appended(
        self, index: int, term: int, size: int, future: asyncio.Future[object | None]
    ) -> None:
        """The core accepted the proposal as entry ``index`` in ``term``."""
        old = self._by_index.pop(index, None)
        if old is not None:  # an index reused after a leadership change we missed
            self._fail(old, _lost(index))
        self._by_index[index] = _Proposal(term, size, future)

    def waiting(self, index: int, term: int) -> bool:
        """Is a proposal appended as (index, term) still waiting for its result?"""
        p = self._by_index.get(index)
        return p is not None and p.term == term and not p.future.done()

    def applied(self, index: int, term: int, result: object | None) -> None:
        """The entry (index, term) was applied with ``result``."""
        p = self._by_index.pop(index, None)
        if p is None:
            return
        self.release(p.size)
        if p.term == term:
            self.succeeded += 1
            if not p.future.done():
                p.future.set_result(result)
        else:
            self.failed += 1
            if not p.future.done():
                p.future.set_exception(_lost(index))

    def fail_all(self, make_error: Callable[[], Exception]) -> int:
        """Fail every appended proposal (leadership lost, driver stopping); returns how many."""
        pending = list(self._by_index.values())
        self._by_index.clear()
        for p in pending:
            self._fail(p, make_error())
        return len(pending)

    def fail_terms_other_than(self, term: int, make_error: Callable[[], Exception]) -> int:
        """Fail proposals appended in another term than ``term``; returns how many."""
        stale = [i for i, p in self._by_index.items() if p.term != term]
        for i in stale:
            self._fail(self._by_index.pop(i), make_error())
        return len(stale)

    def pending(self) -> int:
        """Number of appended proposals not yet resolved."""
        return len(self._by_index)

    def _fail(self, p: _Proposal, exc: Exception) -> None:
        self.release(p.size, refused=True)
        if not p.future.done():
            p.future.set_exception(exc)


def _lost(index: int) -> Exception:
    return OutcomeUnknown(
        f"entry {index} was replaced by another leader's entry: the outcome is unknown; "
        "retry with the same session sequence number"
    )


class ReadWaiters:
    """ReadIndex reads: waiting for the core's ReadState, then for applied >= its index.

    Admission: ``admit`` reserves room for a read (or raises Overloaded once
    ``max_pending`` reads are admitted and not finished); ``new_request`` then registers
    it, using the reservation. A read is finished once its future is resolved here."""

    def __init__(self, max_pending: int = 16384) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending_reads must be >= 1, got {max_pending}")
        self.max_pending = max_pending  # admission limit on reserved + pending()
        self.overloaded = 0  # reads refused by ``admit`` (monotonic)
        self._reserved = 0  # admitted, not yet registered by new_request; >= 0
        self._next_id = 1  # next request id handed to the core; ids are never reused
        self.failed = 0  # reads failed by drop/fail_*: no read index for them (monotonic)
        self._unanswered: dict[int, asyncio.Future[int]] = {}  # id -> caller, no index yet
        self._by_index: list[tuple[int, int, asyncio.Future[int]]] = []  # heap (index, id, fut)

    def admit(self) -> None:
        """Reserve room for one read, to be registered by ``new_request``, or raise
        Overloaded (too many reads admitted and not yet answered)."""
        busy = self._reserved + self.pending()
        if busy >= self.max_pending:
            self.overloaded += 1
            raise Overloaded(
                f"too many reads pending ({busy}; the limit is {self.max_pending}): "
                "back off and retry"
            )
        self._reserved += 1

    def new_request(self, future: asyncio.Future[int]) -> int:
        """Register a read admitted by ``admit``; returns the request id to pass to the
        core."""
        assert self._reserved > 0, "read registered without admission"
        self._reserved -= 1
        rid = self._next_id
        self._next_id += 1
        self._unanswered[rid] = future
        return rid

    def answered(self, request_id: int, index: int, applied: int) -> None:
        """The core answered ``request_id`` with read index ``index``."""
        fut = self._unanswered.pop(request_id, None)
        if fut is None or fut.done():
            return
        if applied >= index:
            fut.set_result(index)
        else:
            heapq.heappush(self._by_index, (index, request_id, fut))

    def applied_to(self, applied: int) -> None:
        """Release every read whose index is <= ``applied``."""
        while self._by_index and self._by_index[0][0] <= applied:
            index, _rid, fut = heapq.heappop(self._by_index)
            if not fut.done():
                fut.set_result(index)

    def drop(self, request_id: int, exc: Exception) -> None:
        """The core will never answer ``request_id`` (or it could not be asked)."""
        fut = self._unanswered.pop(request_id, None)
        if fut is not None:
            self.failed += 1
            if not fut.done():
                fut.set_exception(exc)

    def fail_unanswered(self, make_error: Callable[[], Exception]) -> int:
        """Fail every read still waiting for its ReadState; returns how many."""
        ids = list(self._unanswered)
        for rid in ids:
            self.drop(rid, make_error())
        return len(ids)

    def fail_all(self, make_error: Callable[[], Exception]) -> None:
        """Fail every read (driver stopping)."""
        self.fail_unanswered(make_error)
        while self._by_index:
            _index, _rid, fut = heapq.heappop(self._by_index)
            self.failed += 1
            if not fut.done():
                fut.set_exception(make_error())

    def pending(self) -> int:
        return len(self._unanswered) + len(self._by_index)

    @property
    def requested(self) -> int:
        """Reads registered since start (monotonic)."""
        return self._next_id - 1


def counters(p: ProposalTracker, r: ReadWaiters) -> dict[str, int]:
    """Proposal and read bookkeeping for metrics (plain ints: any thread may read)."""
    return {
        "proposals_pending": p.count,
        "proposals_pending_bytes": p.bytes,
        "proposals_succeeded": p.succeeded,
        "proposals_failed": p.failed,
        "proposals_overloaded": p.overloaded,
        "reads_pending": r.pending(),
        "reads_requested": r.requested,
        "reads_failed": r.failed,
        "reads_overloaded": r.overloaded,
    }
