"""Freshness proofs for bounded-staleness reads: a round trip started here, (t0, R)."""

from __future__ import annotations

import asyncio

from kvraft.server.bounded import FreshnessProof


class _World:
    def __init__(self) -> None:
        self.now = 100.0
        self.local = 0  # revision of the local state
        self.cluster = 0  # revision the confirmation reports
        self.fail: Exception | None = None
        self.calls = 0

    async def confirm(self) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return self.cluster


def _proof(w: _World) -> FreshnessProof:
    return FreshnessProof(w.confirm, lambda: w.local, clock=lambda: w.now)


def test_state_is_fresh_as_of_the_round_trip_start_once_it_holds_the_revision() -> None:
    async def main() -> None:
        w = _World()
        p = _proof(w)
        assert p.age() is None and not p.fresh_within(1.0)  # no proof: refresh started
        w.cluster = 7
        await p.refresh()
        assert w.calls == 1  # the read's refresh and this wait are one round trip
        assert p.age() is None  # the local state (revision 0) is behind revision 7
        w.local = 7
        w.now += 0.25
        assert p.age() == 0.25 and p.fresh_within(0.3)
        w.now += 0.2
        assert not p.fresh_within(0.3)

    asyncio.run(main())


def test_an_older_proof_still_covers_a_node_slightly_behind() -> None:
    async def main() -> None:
        w = _World()
        p = _proof(w)
        w.cluster = 5
        await p.refresh()
        w.now += 1.0
        w.cluster = 9
        await p.refresh()
        w.local = 6  # holds revision 5 but not 9
        assert p.age() == 1.0

    asyncio.run(main())


def test_a_failed_round_trip_proves_nothing_and_says_why() -> None:
    async def main() -> None:
        w = _World()
        p = _proof(w)
        w.fail = ConnectionError("leader unreachable")
        await p.refresh()
        assert p.age() is None and "unreachable" in str(p.last_error)

    asyncio.run(main())
