"""Proposal and read bookkeeping: what callers see as entries apply and leaders change."""

from __future__ import annotations

import asyncio

import pytest

from kvraft.runtime.errors import OutcomeUnknown, Overloaded
from kvraft.runtime.freshness import Freshness, quorum_time
from kvraft.runtime.waiters import ProposalTracker, ReadWaiters


def _fut(loop: asyncio.AbstractEventLoop) -> asyncio.Future[object | None]:
    return loop.create_future()


def test_tracker_matches_index_and_term() -> None:
    loop = asyncio.new_event_loop()
    try:
        t = ProposalTracker(10, 1000)
        a, b = _fut(loop), _fut(loop)
        t.admit(5)
        t.appended(1, 3, 5, a)
        t.admit(5)
        t.appended(2, 3, 5, b)
        t.applied(1, 3, "ok")
        t.applied(2, 4, "other leader's")
        assert a.result() == "ok"
        with pytest.raises(OutcomeUnknown):
            b.result()
        assert (t.count, t.bytes, t.pending()) == (0, 0, 0)
    finally:
        loop.close()


def test_tracker_admission_limits_and_release() -> None:
    t = ProposalTracker(2, 100)
    t.admit(60)
    with pytest.raises(Overloaded, match="bytes in flight"):
        t.admit(50)
    t.admit(40)
    with pytest.raises(Overloaded, match="proposals in flight"):
        t.admit(1)
    t.release(60)
    t.admit(1)
    t2 = ProposalTracker(5, 10)
    t2.admit(500)  # alone, an oversized proposal is admitted (refused later by size limits)


def test_tracker_fail_terms_other_than_current() -> None:
    loop = asyncio.new_event_loop()
    try:
        t = ProposalTracker(10, 1000)
        old, cur = _fut(loop), _fut(loop)
        for i, (f, term) in enumerate(((old, 1), (cur, 2)), start=1):
            t.admit(1)
            t.appended(i, term, 1, f)
        assert t.fail_terms_other_than(2, lambda: OutcomeUnknown("x")) == 1
        assert old.done() and not cur.done()
        cur.cancel()  # a caller that gave up still frees its budget when applied
        t.applied(2, 2, None)
        assert t.count == 0
    finally:
        loop.close()


def test_reads_wait_for_applied_index() -> None:
    loop = asyncio.new_event_loop()
    try:
        w = ReadWaiters()
        f1: asyncio.Future[int] = loop.create_future()
        f2: asyncio.Future[int] = loop.create_future()
        w.admit()
        w.admit()
        r1, r2 = w.new_request(f1), w.new_request(f2)
        assert r1 != r2
        w.answered(r1, 5, applied=7)
        assert f1.result() == 5
        w.answered(r2, 10, applied=7)
        assert not f2.done()
        w.applied_to(9)
        assert not f2.done()
        w.applied_to(10)
        assert f2.result() == 10
        assert w.pending() == 0
    finally:
        loop.close()


def test_freshness_needs_applied_to_cover_heard_commit() -> None:
    f = Freshness()
    assert f.current_as_of() is None
    f.heard(10, at=1.0)
    assert f.current_as_of() is None  # not applied up to 10 yet
    f.applied(9)
    assert f.current_as_of() is None
    f.heard(12, at=2.0)
    f.applied(10)
    assert f.current_as_of() == 1.0
    f.heard(5, at=3.0)  # a lower commit later: the leader's commit is still >= 12
    f.applied(11)
    assert f.current_as_of() == 1.0
    f.applied(12)
    assert f.current_as_of() == 3.0


def test_quorum_time_is_the_majority_ack() -> None:
    voters = frozenset({1, 2, 3})
    assert quorum_time(1, voters, {}, now=10.0) is None
    assert quorum_time(1, voters, {2: 4.0}, now=10.0) == 4.0
    assert quorum_time(1, voters, {2: 4.0, 3: 8.0}, now=10.0) == 8.0
    assert quorum_time(1, frozenset({1}), {}, now=10.0) == 10.0


def test_reads_admitted_and_not_answered_are_bounded() -> None:
    loop = asyncio.new_event_loop()
    try:
        w = ReadWaiters(max_pending=2)
        w.admit()  # reserved, not registered yet: counts
        r1 = w.new_request(loop.create_future())
        w.admit()
        with pytest.raises(Overloaded, match=r"too many reads pending \(2; the limit is 2\)"):
            w.admit()
        r2 = w.new_request(loop.create_future())
        w.answered(r1, 5, applied=3)  # has its index, waits for applied: still pending
        with pytest.raises(Overloaded):
            w.admit()
        w.drop(r2, OutcomeUnknown("gone"))
        w.admit()  # a dropped read makes room
        w.new_request(loop.create_future())
        w.applied_to(5)
        w.admit()  # and so does an answered one
        assert w.overloaded == 2
        with pytest.raises(ValueError, match="max_pending_reads"):
            ReadWaiters(max_pending=0)
    finally:
        loop.close()
