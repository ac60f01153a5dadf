"""A latency histogram cheap enough for the Ready loop: no lock, no allocation per sample.

``observe`` is one ``bisect`` and two additions. Exactly one thread may observe a given
histogram (the driver's event loop, or its I/O thread); any thread may read it (a
metrics scrape): a reader may see a sample counted in a bucket but not yet in ``total``,
never a torn count. Exported in the Prometheus histogram format by kvraft/server/metrics.py.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)
"""Upper bounds in seconds: 100 us (a page-cache write) up to 10 s (a stalled disk)."""


class Histogram:
    """Counts of observed values by upper bound (Prometheus ``le`` semantics)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))  # bucket upper bounds, ascending; not empty
        if not self.bounds:
            raise ValueError("a histogram needs at least one bucket bound")
        # counts[i]: values v with bounds[i-1] < v <= bounds[i]; the last slot is +Inf
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0  # sum of every observed value

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> tuple[list[tuple[float, int]], int, float]:
        """(bucket upper bound -> count of values <= it, ending with +Inf), count, sum."""
        counts = list(self.counts)  # one copy, so buckets and count agree
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            running += n
            out.append((bound, running))
        return out, running, self.total


class SampledTimer:
    """Times one future at a time into a Histogram (how long until it succeeds), so that
    timing costs nothing while many are in flight. Event loop only."""

    def __init__(self, histogram: Histogram, clock: Callable[[], float]) -> None:
        self.histogram = histogram
        self._clock = clock
        self._busy = False  # a future is being timed

    def maybe_time(self, fut: asyncio.Future[Any]) -> None:
        """Time ``fut`` unless another one is being timed."""
        if self._busy:
            return
        self._busy = True
        t0 = self._clock()

        def done(f: asyncio.Future[Any]) -> None:
            self._busy = False
            if not f.cancelled() and f.exception() is None:
                self.histogram.observe(self._clock() - t0)

        fut.add_done_callback(done)
