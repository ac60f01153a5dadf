"""Quorum-first replication (kvraft/runtime/quorum_first.py): a leader sends its appends at
once to the followers that make a quorum with it fastest and to the others in batches.

Observed on three drivers around real cores (the in-memory network of
test_driver_cluster.py) and on the router alone: which follower gets which message when,
that writes still commit on a quorum, that nothing is lost or reordered, and that a fast
follower that goes silent is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfState,
    Entry,
    Heartbeat,
    Message,
)
from kvraft.runtime import Driver
from kvraft.runtime.base import DriverStats
from kvraft.runtime.quorum_first import QuorumFirst

from .test_driver_cluster import Rig, run, until

NO_TIMER = 60_000  # ms: no tick, commit flush or batch timer fires within a test


def _appends_to(sends: Sequence[tuple[Message, ...]], dst: int) -> list[AppendEntries]:
    return [m for s in sends for m in s
            if isinstance(m, AppendEntries) and m.dst == dst and m.entries]


def _first_to_get(sends: Sequence[tuple[Message, ...]], index: int) -> set[int]:
    """The followers that got entry ``index`` in the first send that carried it (the
    send of the Ready that appended it)."""
    for s in sends:
        dsts = {m.dst for m in s if isinstance(m, AppendEntries)
                and any(e.index == index for e in m.entries)}
        if dsts:
            return dsts
    raise AssertionError(f"entry {index} was never sent")


async def _write(leader: Driver, k: int) -> int:
    return int(str(await leader.propose(f"k{k}={k}".encode())))  # its log index


async def _cut_off_the_fast_follower(rig: Rig) -> tuple[Driver, int]:
    """Node 1 leads; two writes show which follower is fast; the network then drops
    everything to and from it. Returns the leader and the other follower."""
    await rig.net.drivers[1].campaign()
    leader = await rig.leader()
    await _write(leader, 0)
    mark = len(rig.net.sends)
    index = await _write(leader, 1)
    (fast,) = _first_to_get(rig.net.sends[mark:], index)
    rig.net.down.add(fast)
    return leader, 5 - fast


def test_one_follower_gets_each_append_at_once_the_other_gets_them_in_one_batch(
    tmp_path: Path,
) -> None:
    """No ticks, no timers: the first follower to answer an append is the fast set
    (before the first write); every write commits on the leader and that follower while the other
    follower receives nothing; a linearizable read's heartbeat then carries everything
    held for it first, in one send and in log order, and it catches up."""
    async def main(rig: Rig) -> None:
        await rig.net.drivers[1].campaign()
        leader = await rig.leader()
        await _write(leader, 0)  # the first followers to answer (even the no-op) are fast
        mark = len(rig.net.sends)
        written = [await _write(leader, k) for k in range(1, 21)]
        got = {i: _appends_to(rig.net.sends[mark:], i) for i in (2, 3)}
        assert sorted(len(v) > 0 for v in got.values()) == [False, True], got
        fast = 2 if got[2] else 3
        slow = 5 - fast
        assert [e.index for m in got[fast] for e in m.entries] == written
        assert rig.machines[slow].index < written[0], "the slow follower got the writes"
        assert leader.stats.appends_held >= 20 and leader.stats.fast_set_misses == 0

        await leader.read_index()  # heartbeats to both followers
        frames = [s for s in rig.net.sends[mark:] if _appends_to([s], slow)]
        assert len(frames) == 1, "what was held went out in more than one send"
        to_slow = [m for m in frames[0] if m.dst == slow]
        assert isinstance(to_slow[-1], Heartbeat), "the held appends came after the heartbeat"
        held = [e.index for m in _appends_to(frames, slow) for e in m.entries]
        assert held == list(range(held[0], written[-1] + 1)) and held[-20:] == written
        await until(lambda: rig.machines[slow].index >= written[-1] - 1)
        assert rig.machines[slow].data.items() <= rig.machines[fast].data.items()
        assert len(rig.machines[slow].data) >= 20

    run(main, tmp_path, quorum_first_ms=NO_TIMER, commit_flush_ms=NO_TIMER, tick_ms=NO_TIMER)


def test_a_fast_follower_that_goes_silent_is_replaced_after_the_delay(tmp_path: Path) -> None:
    """The fast follower is cut off: the next write commits once the batch timer sends
    the held append to the other follower (one miss); from then on that follower is the
    fast set and writes commit without another miss."""
    async def main(rig: Rig) -> None:
        leader, other = await _cut_off_the_fast_follower(rig)
        await _write(leader, 2)  # waits for the timer: the fast follower is silent
        assert leader.stats.fast_set_misses == 1
        written = [await _write(leader, k) for k in range(3, 11)]
        assert leader.stats.fast_set_misses == 1, "the live follower did not become fast"
        await until(lambda: rig.machines[other].index >= written[-1] - 1)
        assert {f"k{k}" for k in range(10)} <= rig.machines[other].data.keys()

    run(main, tmp_path, quorum_first_ms=300, commit_flush_ms=NO_TIMER, tick_ms=NO_TIMER)


def test_a_silent_fast_follower_is_replaced_when_heartbeats_flush_the_batch(
    tmp_path: Path,
) -> None:
    """The batch timer never fires; heartbeats (every 20 ms) carry what was held for the
    slow follower. The fast follower is cut off: the writes after it commit on the other
    follower once a heartbeat takes them there; within two heartbeats a held write is
    found uncommitted past half the delay (one miss), and from then on the other
    follower gets every append at once, without waiting for a heartbeat."""
    async def main(rig: Rig) -> None:
        leader, other = await _cut_off_the_fast_follower(rig)
        for k in range(2, 5):  # each waits for a heartbeat until the miss
            await _write(leader, k)
        assert leader.stats.fast_set_misses == 1
        mark = len(rig.net.sends)
        written = [await _write(leader, k) for k in range(5, 13)]
        assert all(_first_to_get(rig.net.sends[mark:], i) == {other} for i in written)
        assert leader.stats.fast_set_misses == 1

    # a batch timer that never fires; half its delay is shorter than a heartbeat interval
    run(main, tmp_path, quorum_first_ms=30, commit_flush_ms=NO_TIMER, tick_ms=20)


# ---------------------------------------------------------------- the router alone


class _Router:
    """A QuorumFirst whose sends are recorded and whose timer runs its work at once."""

    def __init__(self, voters: set[int], learners: frozenset[int] = frozenset(), *,
                 outgoing: frozenset[int] = frozenset(), leader: bool = True,
                 delay_ms: int = 10_000) -> None:
        self.sent: list[Message] = []
        self.commit = 0
        self.stats = DriverStats()
        self.q = QuorumFirst(1, delay_ms, self.sent.extend, lambda work: work(),
                             lambda: self.commit, self.stats)
        self.q.configure(leader, ConfState(voters=frozenset(voters),
                                           learners=frozenset(learners),
                                           voters_outgoing=frozenset(outgoing)))


def _ae(dst: int, index: int) -> AppendEntries:
    return AppendEntries(1, dst, 1, index - 1, 1, (Entry(index=index, term=1),), 0)


def _ack(src: int, index: int, reject: bool = False) -> AppendResponse:
    return AppendResponse(src, 1, 1, index, reject)


def test_router_holds_for_the_slow_follower_and_keeps_its_order() -> None:
    async def t() -> None:
        r = _Router({1, 2, 3}, delay_ms=20)
        assert r.q.route([_ae(2, 5), _ae(3, 5)]) == [_ae(2, 5), _ae(3, 5)]  # no fast set yet
        r.q.acked(_ack(3, 5, reject=True))  # a refusal does not make a follower fast
        r.q.acked(_ack(2, 5))
        r.q.acked(_ack(3, 5))
        assert r.q.fast == {2}
        assert r.q.route([_ae(2, 6), _ae(3, 6)]) == [_ae(2, 6)]
        assert r.q.route([_ae(3, 7), _ae(2, 7)]) == [_ae(2, 7)]
        hb = Heartbeat(1, 3, 1, 0)
        assert r.q.route([hb]) == [_ae(3, 6), _ae(3, 7), hb]  # held first, in order
        assert r.stats.appends_held == 2 and r.sent == []

        r.commit = 8  # the fast follower keeps up: the batch timer only sends
        assert r.q.route([_ae(2, 8), _ae(3, 8)]) == [_ae(2, 8)]
        await asyncio.sleep(0.1)
        assert r.sent == [_ae(3, 8)] and r.q.fast == {2} and r.stats.fast_set_misses == 0

        r.sent.clear()  # now it does not: what was held 10 ms and more has not committed
        assert r.q.route([_ae(2, 9), _ae(3, 9)]) == [_ae(2, 9)]
        await asyncio.sleep(0.1)
        assert r.sent == [_ae(3, 9)] and r.q.fast == set() and r.stats.fast_set_misses == 1
        assert r.q.route([_ae(2, 10), _ae(3, 10)]) == [_ae(2, 10), _ae(3, 10)]  # race again

    asyncio.run(t())


def test_router_holds_nothing_when_a_quorum_needs_every_follower_or_it_cannot_tell() -> None:
    async def t() -> None:
        for r in (_Router({1, 2}), _Router({1, 2, 3}, outgoing=frozenset({1, 2})),
                  _Router({1, 2, 3}, leader=False), _Router({1, 2, 3}, delay_ms=0)):
            r.q.acked(_ack(2, 5))
            assert r.q.route([_ae(2, 6), _ae(3, 6)]) == [_ae(2, 6), _ae(3, 6)]
        r = _Router({1, 2, 3}, learners=frozenset({4}))
        r.q.acked(_ack(4, 5))  # a learner never counts toward a quorum
        assert r.q.fast == set()
        r.q.acked(_ack(3, 5))
        assert r.q.route([_ae(4, 6), _ae(2, 6), _ae(3, 6)]) == [_ae(3, 6)]
        r.q.configure(False, ConfState(voters=frozenset({1, 2, 3})))  # stepped down
        assert r.sent == [_ae(4, 6), _ae(2, 6)], "what was held is sent when leadership ends"

    asyncio.run(t())
