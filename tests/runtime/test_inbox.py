"""The driver's inbox: queued work in order, and ticks that keep pace with real time.

Raft's timers (election timeout, check-quorum, the leader lease) count ticks. If the event
loop stalls (GC pause, SIGSTOP, a long synchronous call), the ticks that fell due meanwhile
must all reach the core: a leader whose tick count lags real time would believe its lease
still holds after a new leader was elected elsewhere and serve a stale LEASE read.
"""

from __future__ import annotations

import asyncio
import time

from kvraft.runtime.inbox import Inbox

TICK_MS = 10


def test_ticks_that_fell_due_during_a_stalled_loop_all_reach_the_core() -> None:
    async def main() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        inbox = Inbox(TICK_MS)
        inbox.start()
        ticks = 0

        def tick() -> None:
            nonlocal ticks
            ticks += 1

        try:
            start = loop.time()
            time.sleep(30 * TICK_MS / 1000)  # the loop stalls: no timer can fire
            await inbox.wait()  # the overdue timer fires first, then the driver drains
            inbox.drain(tick)
            return ticks, loop.time() - start
        finally:
            inbox.close()

    ticks, elapsed = asyncio.run(main())
    due = int(elapsed * 1000 / TICK_MS)  # at least this many tick periods really passed
    assert due >= 30
    assert ticks >= due - 1, f"{ticks} ticks reached the core after {due} tick periods"


def test_drain_counts_overdue_ticks_even_before_the_timer_callback_runs() -> None:
    """Work queued right after a stall (a client's LEASE read) is drained after the ticks
    that fell due, whichever of the two the loop happens to run first."""

    async def main() -> list[str]:
        inbox = Inbox(TICK_MS)
        inbox.start()
        events: list[str] = []
        try:
            time.sleep(20 * TICK_MS / 1000)
            inbox.put(lambda: events.append("read"))
            inbox.drain(lambda: events.append("tick"))  # no await: the timer has not run
            return events
        finally:
            inbox.close()

    events = asyncio.run(main())
    assert events[-1] == "read"
    assert events.count("tick") >= 19, events


def test_queued_work_runs_in_order() -> None:
    async def main() -> list[int]:
        inbox = Inbox(1000)
        inbox.start()
        out: list[int] = []
        try:
            for i in range(5):
                inbox.put(lambda i=i: out.append(i))  # type: ignore[misc]
            await inbox.wait()
            inbox.drain(lambda: None)
            return out
        finally:
            inbox.close()

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
