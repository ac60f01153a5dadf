"""Adapts the KV state machine (kvraft/kv) to the runtime's StateMachine protocol.

The only translation: snapshot files are reported to the runtime as LocalSnapshot
(path, meta, size) instead of the storage layer's SnapshotInfo.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvraft.core.types import ConfState, Entry, SnapshotMeta
from kvraft.kv.machine import KvStateMachine
from kvraft.runtime.base import LocalSnapshot
from kvraft.storage.snapshot import SnapshotInfo


def local_snapshot(info: SnapshotInfo) -> LocalSnapshot:
    return LocalSnapshot(path=str(info.path), meta=info.meta, size=info.size_bytes)


class MachineAdapter:
    """runtime.base.StateMachine over a KvStateMachine (same threading rules)."""

    def __init__(self, machine: KvStateMachine) -> None:
        self.machine = machine  # the KV state machine; shared with the read path

    def applied(self) -> tuple[int, int]:
        return self.machine.applied()

    def apply(
        self, entries: Sequence[Entry], conf_state: ConfState | None
    ) -> Sequence[object | None]:
        return self.machine.apply(entries, conf_state)

    def write_snapshot(self) -> LocalSnapshot:
        return local_snapshot(self.machine.write_snapshot())

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        return local_snapshot(self.machine.restore_snapshot(path, meta))
