"""When the driver takes a local snapshot, and how the log is compacted behind it.

After ``snapshot_entries`` applied entries (or on demand: an operator's snapshot, or an
InstallSnapshot with no file to carry, see ``send``) the state machine writes a snapshot on the
snapshot thread (a consistent read view; writes go on); back on the driver task the
file is registered (snapshots.py) and the log is compacted behind it on the driver's
I/O thread. At most one snapshot runs at a time; a second request joins it.

Used only by the driver task (driver.py); the driver hands it the ways to reach its
task (``submit``), its I/O thread (``in_io``) and its fatal path (``fatal_later``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from kvraft.core.types import InstallSnapshot, SnapshotMeta
from kvraft.errors import Compacted
from kvraft.runtime.base import (
    DriverStats,
    DurableLog,
    LocalSnapshot,
    RaftNode,
    StateMachine,
    Transport,
)
from kvraft.runtime.snapshots import SnapshotFiles


class SnapshotScheduler:
    """Takes local snapshots for one driver and compacts its log behind them."""

    def __init__(
        self,
        *,
        node_id: int,
        every: int,
        files: SnapshotFiles,
        since: int,
        log: DurableLog,
        state: StateMachine,
        stats: DriverStats,
        applied: Callable[[], int],
        submit: Callable[[Callable[[], None]], None],
        in_io: Callable[..., asyncio.Future[Any]],
        fatal_later: Callable[[BaseException | None], None],
    ) -> None:
        self.files = files  # local and received snapshot files (shared with the driver)
        self.since = since  # entries applied since the latest snapshot; >= 0
        self._every = every  # applied entries between automatic snapshots (0 = never)
        self._log = log  # compacted only on the driver's I/O thread
        self._sm = state  # write_snapshot called only on the snapshot thread
        self._stats = stats  # the driver's counters (snapshots)
        self._applied = applied  # the driver's applied index, read on the driver task
        self._submit = submit  # runs work on the driver task
        self._in_io = in_io  # runs work on the driver's I/O thread
        self._fatal_later = fatal_later  # stops the driver with an error
        self._running: asyncio.Future[LocalSnapshot] | None = None  # snapshot in progress
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kvraft-snap-{node_id}")
        self._log_ = structlog.get_logger("kvraft.runtime").bind(node_id=node_id)

    def shutdown(self) -> None:
        """Wait for the snapshot thread (blocking: call off the loop)."""
        self._pool.shutdown(True)

    def maybe_start(self) -> None:
        """Start a snapshot if ``every`` entries were applied since the latest one."""
        n = self._every
        if n > 0 and self.since >= n and self._running is None:
            self.start()

    def start(self) -> asyncio.Future[LocalSnapshot]:
        """Start a snapshot (or join the one in progress); the future resolves once the
        file is complete and the log compacted behind it."""
        if self._running is not None:
            return self._running
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[LocalSnapshot] = loop.create_future()
        self._running = fut
        written = loop.run_in_executor(self._pool, self._sm.write_snapshot)
        written.add_done_callback(lambda w: self._submit(lambda: self._written(w, fut)))
        return fut

    def _written(
        self, written: asyncio.Future[LocalSnapshot], fut: asyncio.Future[LocalSnapshot]
    ) -> None:
        """Driver task: the snapshot file is complete; compact the log behind it."""
        exc = written.exception()
        if exc is not None:
            self._running = None
            self._log_.error("snapshot failed", error=repr(exc))
            if not fut.done():
                fut.set_exception(exc)
            return
        snap = written.result()
        self._stats.snapshots += 1
        self.register(snap)
        self.since = self._applied() - snap.meta.index
        compacted = self._in_io(self._compact, snap.meta)

        def finished(c: asyncio.Future[None]) -> None:
            self._running = None
            if c.exception() is not None:
                if not fut.done():
                    fut.set_exception(c.exception() or RuntimeError())
                self._fatal_later(c.exception())
                return
            self._log_.info("snapshot taken, log compacted", index=snap.meta.index,
                            term=snap.meta.term, size=snap.size)
            if not fut.done():
                fut.set_result(snap)

        compacted.add_done_callback(finished)

    def send(self, m: InstallSnapshot, transport: Transport, node: RaftNode) -> None:
        """Driver task: hand ``m`` to the transport with the local file standing for its
        snapshot; without one, tell the core the transfer failed and take a new one."""
        snap = self.files.for_index(m.meta.index)
        if snap is None:
            self._log_.warning("no snapshot file to send: taking a new snapshot",
                               index=m.meta.index, to=m.dst)
            self._submit(functools.partial(node.report_snapshot, m.dst, False))
            # the log is compacted behind it: the core's next attempt has a file
            self.start()
        else:
            self._log_.info("sending snapshot", to=m.dst, index=m.meta.index)
            transport.send_snapshot(m, snap)

    def _compact(self, meta: SnapshotMeta) -> None:
        with contextlib.suppress(Compacted):  # a newer snapshot was installed meanwhile
            self._log.compact(meta)

    def register(self, snap: LocalSnapshot) -> None:
        """A local snapshot file is complete (taken here or installed from a leader)."""
        self.files.register(snap)

    def installed(self, snap: LocalSnapshot) -> None:
        """A snapshot from the leader was installed: its file is the latest, and the
        count of applied entries starts again from it."""
        self.register(snap)
        self.since = 0

    @property
    def latest(self) -> LocalSnapshot | None:
        """The newest complete local snapshot file (taken here or installed)."""
        return self.files.latest
