"""The commit flush timer of a leader whose core holds commit indexes back.

With ``Config.lazy_commit`` a leader's core tells followers a new commit index only with
the next AppendEntries that carries entries, a heartbeat, or ``flush_commit()``. After
every Ready the driver (driver.py) calls ``arm``: if a follower has not been sent the
commit index, it is sent at the latest ``commit_flush_ms`` from now, unless an
AppendEntries carried it meanwhile (under load and at one write at a time the next
AppendEntries does: then the flush sends nothing and waits for the newer index).

Used only on the driver's event loop; the flush itself runs on the driver task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kvraft.runtime.base import RaftNode


class CommitFlush:
    """At most one pending flush of the core's unsent commit index."""

    def __init__(
        self, node: RaftNode, delay_ms: int, submit: Callable[[Callable[[], None]], None]
    ) -> None:
        self._node = node  # the driver's core; touched only on the driver task
        self._delay_ms = delay_ms  # commit_flush_ms; 0 or less: never by timer
        self._submit = submit  # runs work on the driver task
        self._timer: asyncio.TimerHandle | None = None  # pending commit flush (leader)

    def arm(self) -> None:
        """Driver task, after a Ready: schedule a flush if the core has an unsent commit
        index and none is pending. The flush sends only if THAT index is still unsent
        when the timer fires; if an AppendEntries carried it meanwhile, a newer unsent
        one gets its own full delay."""
        delay = self._delay_ms
        node = self._node
        if delay <= 0 or self._timer is not None or not node.commit_unsent():
            return
        armed = node.commit

        def flush() -> None:
            self._timer = None
            if node.commit_unsent(armed):
                node.flush_commit()
            else:
                self.arm()

        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay / 1000, self._submit, flush)

    def cancel(self) -> None:
        """The driver stops: drop a pending flush."""
        if self._timer is not None:
            self._timer.cancel()
