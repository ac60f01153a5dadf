"""Latency histograms of the node's disk work, taken by thin wrappers around the log and
the state machine the driver is given (so the driver itself stays free of metrics code).

Each wrapper method adds two clock reads and one ``Histogram.observe`` to a call that
does a durable LMDB write, and times it on the thread that runs it (the driver's I/O
thread, or its snapshot thread), so a histogram has one writer. Failed calls are not
timed: they stop the node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from kvraft.core.types import ConfState, Entry, HardState, SnapshotMeta
from kvraft.runtime.base import (
    DurableLog,
    JointApplyFn,
    JointLog,
    JointStateMachine,
    LocalSnapshot,
    PredictingStateMachine,
    StateMachine,
)
from kvraft.runtime.histogram import Histogram


@dataclass(slots=True)
class DiskTimings:
    """Histograms in seconds, each written by one thread (named) and read by scrapes."""

    log_save: Histogram = field(default_factory=Histogram)  # one Ready's log write; I/O thread
    apply: Histogram = field(default_factory=Histogram)  # one apply transaction; I/O thread
    snapshot_save: Histogram = field(default_factory=Histogram)  # snapshot thread
    snapshot_restore: Histogram = field(default_factory=Histogram)  # I/O thread


class TimedLog:
    """A DurableLog that times ``save`` (one durable write with fsync per Ready)."""

    def __init__(self, log: DurableLog, timings: DiskTimings) -> None:
        self._log = log  # the real log store
        self._hist = timings.log_save

    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
        extra: Callable[[Any], None] | None = None,
    ) -> None:
        """The log's save; ``extra`` (a joined apply, see runtime.base.JointLog) is passed
        on only if given, so a log without that capability is called as before. The
        histogram then times the joined transaction."""
        t0 = time.perf_counter()
        if extra is None:
            self._log.save(entries=entries, hard_state=hard_state, snapshot=snapshot)
        else:
            log = cast(JointLog, self._log)
            log.save(entries=entries, hard_state=hard_state, snapshot=snapshot, extra=extra)
        self._hist.observe(time.perf_counter() - t0)

    def compact(self, meta: SnapshotMeta) -> None:
        self._log.compact(meta)

    def save_conf_state(self, cs: ConfState) -> None:
        self._log.save_conf_state(cs)

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._log.initial_state()

    def term(self, index: int) -> int:
        return self._log.term(index)

    def first_index(self) -> int:
        return self._log.first_index()

    def last_index(self) -> int:
        return self._log.last_index()

    def snapshot_meta(self) -> SnapshotMeta:
        return self._log.snapshot_meta()


class TimedStateMachine:
    """A StateMachine that times ``apply``, ``write_snapshot`` and ``restore_snapshot``."""

    def __init__(self, machine: StateMachine, timings: DiskTimings) -> None:
        self._sm = machine  # the real state machine (same threading rules)
        self._t = timings

    def applied(self) -> tuple[int, int]:
        return self._sm.applied()

    def apply(
        self, entries: Sequence[Entry], conf_state: ConfState | None,
        staged: Callable[[Sequence[object | None]], None] | None = None,
    ) -> Sequence[object | None]:
        t0 = time.perf_counter()
        results = self._sm.apply(entries, conf_state, staged)
        self._t.apply.observe(time.perf_counter() - t0)
        return results

    def joint_apply(self, log: object) -> JointApplyFn | None:
        """The wrapped machine's joined apply against the log under a TimedLog (joined
        applies are timed by ``log_save``, not ``apply``)."""
        if not isinstance(self._sm, JointStateMachine):
            return None
        return self._sm.joint_apply(log._log if isinstance(log, TimedLog) else log)

    def predict(self, entries: Sequence[Entry]) -> Sequence[object | None]:
        """The wrapped machine's dry run (nothing, if it has none; not timed)."""
        if not isinstance(self._sm, PredictingStateMachine):
            return []
        return self._sm.predict(entries)

    def result_key(self, result: object | None) -> bytes:
        assert isinstance(self._sm, PredictingStateMachine)
        return self._sm.result_key(result)

    def write_snapshot(self) -> LocalSnapshot:
        t0 = time.perf_counter()
        snap = self._sm.write_snapshot()
        self._t.snapshot_save.observe(time.perf_counter() - t0)
        return snap

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        t0 = time.perf_counter()
        snap = self._sm.restore_snapshot(path, meta)
        self._t.snapshot_restore.observe(time.perf_counter() - t0)
        return snap
