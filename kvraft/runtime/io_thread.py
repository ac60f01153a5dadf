"""The driver's I/O thread, and small writes that skip it.

Log writes and applies run on ONE dedicated thread (a single-worker executor), so they
never reorder and the event loop keeps feeding the core while a large write commits.
For a small write that hand-off is most of the cost: the loop wakes the thread, the
thread wakes the loop, and on a busy box each wake-up may wait for a CPU. So
``write_small`` runs a write of at most ``inline_entries`` entries right on the loop
when the thread has nothing queued or running (nothing can be reordered then; LMDB
releases the GIL while it commits, so gRPC's threads go on meanwhile). Measured at one
put at a time on a 2-core box, 3 nodes: p50 3.80 -> 3.29 ms and 4.7 -> 3.8 ms of server
CPU per put (6 interleaved reps; docs/performance.md).

Used only on the driver's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class IoThread:
    """One worker thread for the driver's storage jobs, in submission order."""

    def __init__(self, name: str, inline_entries: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._inline_entries = inline_entries  # 0: every write on the thread
        self._jobs = 0  # submitted and not yet finished

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the thread, after every job submitted before it."""
        fut = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        self._jobs += 1
        fut.add_done_callback(self._finished)
        return fut

    def write_small(self, entries: int, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """As ``run``, but a write of at most ``inline_entries`` entries runs at once,
        here on the loop, if the thread is idle. The result (or error) is in the future
        either way."""
        if not 0 < entries <= self._inline_entries or self._jobs:
            return self.run(fn, *args)
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting driver
            fut.set_exception(exc)
        return fut

    def shutdown(self) -> None:
        """Wait for the jobs submitted so far and end the thread (blocking)."""
        self._pool.shutdown(True)

    def _finished(self, _fut: object) -> None:
        self._jobs -= 1
