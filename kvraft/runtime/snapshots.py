"""Which snapshot files the driver knows of: its own (to stream to followers and to
operators) and those received from a leader (waiting to be installed).

Used only by the driver task. Files are owned by the state machine's snapshot directory
(it writes, installs and prunes them); this registry only remembers paths.
"""

from __future__ import annotations

import contextlib
import os

from kvraft.core.types import SnapshotMeta
from kvraft.runtime.base import LocalSnapshot

KEEP = 4
"""Local snapshots remembered (the state machine keeps fewer files; older ones vanish)."""


class SnapshotFiles:
    def __init__(self, latest: LocalSnapshot | None) -> None:
        self.latest = latest  # newest complete local snapshot file
        self._local: dict[int, LocalSnapshot] = {}  # local snapshot files by index
        if latest is not None:
            self._local[latest.meta.index] = latest
        self._received: dict[int, str] = {}  # received files by meta.index, not installed

    def register(self, snap: LocalSnapshot) -> None:
        """A local snapshot file is complete (taken here or installed from a leader)."""
        self._local[snap.meta.index] = snap
        if self.latest is None or snap.meta.index >= self.latest.meta.index:
            self.latest = snap
        for index in sorted(self._local)[:-KEEP]:
            del self._local[index]

    def for_index(self, index: int) -> LocalSnapshot | None:
        """The local file standing for ``index`` (what an InstallSnapshot must carry)."""
        return self._local.get(index)

    def received(self, meta: SnapshotMeta, path: str) -> None:
        """A leader's snapshot file is complete at ``path``; a previous file received for
        the same snapshot is deleted."""
        old = self._received.get(meta.index)
        if old is not None and old != path:
            with contextlib.suppress(OSError):
                os.unlink(old)
        self._received[meta.index] = path

    def take_received(self, meta: SnapshotMeta) -> list[str]:
        """The received file for ``meta`` first, then older received files (superseded:
        to delete). AssertionError if nothing was received for ``meta`` (the core only
        installs what was stepped in)."""
        path = self._received.pop(meta.index, None)
        if path is None:
            raise AssertionError(f"no received file for snapshot {meta.index}")
        older = [self._received.pop(i) for i in list(self._received) if i < meta.index]
        return [path, *older]
