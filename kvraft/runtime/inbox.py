"""The driver task's input queue: queued work, a tick timer, and one wake-up event.

Everything that must reach the core (peer messages, proposals, reads, transport reports)
is queued here as a zero-argument callable and run, in FIFO order, only by the driver
task (``drain``). Ticks are counted by a timer on the event loop and handed over first.

Ticks keep pace with the loop's clock: after a stall (GC pause, SIGSTOP, a long synchronous
call) every tick period that passed is counted, never skipped. Raft's timers count ticks,
and a leader whose count lagged real time would take its lease (lease reads) to outlive
the election timeout that lets the other nodes elect a new leader.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Inbox:
    def __init__(self, tick_ms: int) -> None:
        self._period = tick_ms / 1000  # seconds per tick
        self._work: deque[Callable[[], None]] = deque()  # queued work, FIFO
        self._ticks_due = 0  # timer ticks not yet handed out; >= 0
        self._wake: asyncio.Event | None = None  # set whenever there is something to do
        self._timer: asyncio.TimerHandle | None = None  # the next tick, while running
        self._next_tick_at = 0.0  # loop time the next tick is due
        self.closed = False  # once True: no more ticks; waits return at once

    def start(self) -> None:
        """Create the wake event and start ticking (on the running loop)."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._next_tick_at = loop.time() + self._period
        self._timer = loop.call_at(self._next_tick_at, self._on_tick)

    def close(self) -> None:
        """Stop ticking, drop queued work and wake the driver task."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._work.clear()
        if self._wake is not None:
            self._wake.set()

    def put(self, work: Callable[[], None]) -> None:
        self._work.append(work)
        if self._wake is not None:
            self._wake.set()

    def drain(self, tick: Callable[[], None]) -> None:
        """Call ``tick`` once per due tick, then run the queued work in order."""
        if self._timer is not None and not self.closed:
            self._count_due(asyncio.get_running_loop().time())
        while self._ticks_due:
            self._ticks_due -= 1
            tick()
        work = self._work
        while work:
            work.popleft()()

    async def wait(self) -> None:
        """Return when there is something to drain (or the inbox is closed)."""
        assert self._wake is not None, "inbox not started"
        if not self._work and not self._ticks_due and not self.closed:
            await self._wake.wait()
        self._wake.clear()

    async def pump_until(self, fut: asyncio.Future[T], tick: Callable[[], None]) -> T:
        """Keep draining (the core keeps getting input) until ``fut`` completes. Once the
        inbox is closed, just wait for ``fut``."""
        assert self._wake is not None, "inbox not started"
        wake = self._wake
        fut.add_done_callback(lambda _f: wake.set())
        while not fut.done():
            if self.closed:
                await asyncio.wait((fut,))
                break
            self.drain(tick)
            if not fut.done():
                await self.wait()
        return fut.result()

    def _count_due(self, now: float) -> None:
        """Count every tick period that ended by ``now`` (all of them, after a stall)."""
        if now >= self._next_tick_at:
            n = int((now - self._next_tick_at) // self._period) + 1
            self._ticks_due += n
            self._next_tick_at += n * self._period

    def _on_tick(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        self._count_due(max(loop.time(), self._next_tick_at))  # due now (clock resolution)
        if not self.closed:
            self._timer = loop.call_at(self._next_tick_at, self._on_tick)
        self._wake.set()
