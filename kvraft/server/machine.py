"""Adapts the KV state machine (kvraft/kv) to the runtime's StateMachine protocol.

The only translation: snapshot files are reported to the runtime as LocalSnapshot
(path, meta, size) instead of the storage layer's SnapshotInfo. A snapshot file received
from the leader is checked completely before the runtime hears of it
(:func:`deliver_verified_snapshot`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from kvraft.core.types import ConfState, Entry, InstallSnapshot, SnapshotMeta
from kvraft.errors import SnapshotError
from kvraft.kv.machine import JointApply, KvStateMachine
from kvraft.runtime.base import LocalSnapshot
from kvraft.storage.snapshot import SnapshotInfo, verify


def local_snapshot(info: SnapshotInfo) -> LocalSnapshot:
    return LocalSnapshot(path=str(info.path), meta=info.meta, size=info.size_bytes)


async def deliver_verified_snapshot(
    deliver: Callable[[InstallSnapshot, str], None], msg: InstallSnapshot, path: Path
) -> None:
    """Read the received snapshot file ``path`` through (every checksum, off the event
    loop), then ``deliver`` it. A damaged file -- e.g. one that rotted on the leader's
    disk, which the transfer's checksums cannot tell -- is deleted and SnapshotError
    raised (the leader hears of a failed transfer): restoring it would fail once the core
    has switched to the snapshot, and stop the node."""
    try:
        await asyncio.to_thread(verify, path)
    except SnapshotError:
        path.unlink(missing_ok=True)
        raise
    deliver(msg, str(path))


class MachineAdapter:
    """runtime.base.StateMachine over a KvStateMachine (same threading rules)."""

    def __init__(
        self, machine: KvStateMachine, on_restored: Callable[[], object] | None = None
    ) -> None:
        self.machine = machine  # the KV state machine; shared with the read path
        # called (on the I/O thread) once a snapshot has replaced the state
        self._on_restored = on_restored

    def applied(self) -> tuple[int, int]:
        return self.machine.applied()

    def apply(
        self, entries: Sequence[Entry], conf_state: ConfState | None,
        staged: Callable[[Sequence[object | None]], None] | None = None,
    ) -> Sequence[object | None]:
        return self.machine.apply(entries, conf_state, staged)

    def joint_apply(self, log: object) -> JointApply | None:
        """The optional merged apply (runtime.base.JointStateMachine): present only when
        the KV state lives in ``log``'s own LMDB environment."""
        return self.machine.joint_apply(log)

    def predict(self, entries: Sequence[Entry]) -> Sequence[object | None]:
        """The optional dry run (runtime.base.PredictingStateMachine)."""
        return self.machine.predict(entries)

    def result_key(self, result: object | None) -> bytes:
        return self.machine.result_key(result)

    def write_snapshot(self) -> LocalSnapshot:
        return local_snapshot(self.machine.write_snapshot())

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        restored = local_snapshot(self.machine.restore_snapshot(path, meta))
        if self._on_restored is not None:
            self._on_restored()
        return restored
