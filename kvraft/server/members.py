"""The address book: node id -> "host:port" (one port per node serves clients and peers).

Sources: the configured peers (the cluster spec / --peers: always win, so an operator can
move a node), the addresses carried in applied ADD_VOTER/ADD_LEARNER entries, and a small
JSON file in the data dir that remembers the latter across restarts (written atomically).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from kvraft.core.types import ConfChange, ConfChangeType


class AddressBook:
    def __init__(self, path: Path, configured: Mapping[int, str]) -> None:
        self._path = path  # members.json in the data dir
        self._configured = dict(configured)  # from the config; wins over learned ones
        self._learned: dict[int, str] = {}  # from applied conf changes (persisted)
        try:
            raw = json.loads(path.read_text())
            self._learned = {int(k): str(v) for k, v in raw.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError):
            self._learned = {}  # a damaged cache: the log and config rebuild it

    def all(self) -> dict[int, str]:
        return {**self._learned, **self._configured}

    def get(self, node_id: int) -> str:
        return self.all().get(node_id, "")

    def apply(self, cc: ConfChange) -> bool:
        """Record what an applied conf change says; True if the book changed."""
        if cc.type == ConfChangeType.REMOVE_NODE:
            if cc.node_id in self._learned:
                del self._learned[cc.node_id]
                self._save()
                return True
            return False
        address = cc.context.decode(errors="replace")
        if not address or self._learned.get(cc.node_id) == address:
            return False
        self._learned[cc.node_id] = address
        self._save()
        return True

    def _save(self) -> None:
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({str(k): v for k, v in sorted(self._learned.items())}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
