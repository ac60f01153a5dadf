"""Bounded-staleness reads (STALE + ``max_staleness_ms``): proving a node's state is fresh.

The proof is a round trip that THIS node starts, never a message it merely received: a
message from the leader may have waited in a queue or a socket for seconds (a restarted
or reconnected follower gets the backlog), and a heartbeat carries only the commit index
the leader knows this node to hold, so "I heard from the leader at time t" says nothing
about what was committed before t.

A proof is (t0, R): at local monotonic time t0 this node asked for a linearizable
confirmation, and got back the cluster revision R of a state that includes every write
committed before t0 (the leader's state after a ReadIndex barrier; on the leader itself,
its own state after ``read_index``). Every write committed before t0 has a revision <= R,
so once the local state's revision is >= R, it is current as of t0: a read with bound B
may be served locally while ``now - t0 <= B``.

One confirmation runs at a time and every read waiting for one shares it. A read finding
the proof older than half its bound starts a refresh in the background, so a steady
stream of bounded reads is served locally without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

KEEP = 4
"""Confirmations remembered: a node slightly behind the newest one may still be covered
by an older one."""

Confirm = Callable[[], Awaitable[int]]
"""Returns the revision of a state confirmed linearizably at or after the call; raises
if it cannot (no leader, unreachable, timeout)."""


class FreshnessProof:
    def __init__(
        self,
        confirm: Confirm,
        local_revision: Callable[[], int],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._confirm = confirm  # the round trip (see module doc)
        self._local_revision = local_revision  # revision of this node's current state
        self._clock = clock
        # (t0, R) of the newest confirmations, oldest first (t0 and R non-decreasing)
        self._proofs: deque[tuple[float, int]] = deque(maxlen=KEEP)
        self._refresh: asyncio.Future[None] | None = None  # the confirmation in flight
        self.last_error: BaseException | None = None  # why the last confirmation failed

    def age(self) -> float | None:
        """Seconds this node's state has been provably current for (0 = as of now), or
        None if no confirmation covers the local state yet."""
        local = self._local_revision()
        for t0, revision in reversed(self._proofs):  # the newest one the state covers
            if local >= revision:
                return max(0.0, self._clock() - t0)
        return None

    def fresh_within(self, bound_s: float) -> bool:
        """True if the local state is provably at most ``bound_s`` old; starts a refresh
        in the background once the proof is older than half the bound (or missing)."""
        age = self.age()
        if age is None or age > bound_s / 2:
            self.refresh()
        return age is not None and age <= bound_s

    def refresh(self) -> asyncio.Future[None]:
        """Start a confirmation (or join the one in flight); the future completes when it
        ends, successful or not (never raises)."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._run())
        return self._refresh

    async def _run(self) -> None:
        t0 = self._clock()
        try:
            revision = await self._confirm()
        except Exception as exc:  # noqa: BLE001 - reported through last_error / age()
            self.last_error = exc
            return
        self.last_error = None
        proofs = self._proofs
        while proofs and proofs[-1][1] >= revision:  # an older proof that proves no more
            proofs.pop()
        if not proofs or t0 > proofs[-1][0]:
            proofs.append((t0, revision))
