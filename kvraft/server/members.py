"""The address book: node id -> "host:port" (one port per node serves clients and peers).

Sources: the configured peers (the cluster spec / --peers: always win, so an operator can
move a node) and the replicated address record of the KV state (kvraft/kv/machine.py:
the addresses carried in applied ADD_VOTER/ADD_LEARNER entries, saved with the applied
index and carried by snapshots). The book follows the record: loaded at startup, updated
as conf changes apply, reloaded after a snapshot is installed.

An older build kept the learned addresses in ``members.json`` in the data dir instead;
:func:`take_legacy_cache` reads that file once so the node can seed its state record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from kvraft.core.types import ConfChange, ConfChangeType, ConfState

LEGACY_CACHE = "members.json"
"""The address cache file of older builds, in the data dir."""


def take_legacy_cache(data_dir: Path) -> dict[int, str] | None:
    """The addresses in an older build's ``members.json`` (None if there is no file; a
    damaged one counts as empty: the log and config rebuild it)."""
    path = data_dir / LEGACY_CACHE
    try:
        raw = json.loads(path.read_text())
        return {int(k): str(v) for k, v in raw.items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return {}


class AddressBook:
    """Not thread-safe: used on the event loop only."""

    def __init__(self, configured: Mapping[int, str], learned: Mapping[int, str]) -> None:
        self._configured = dict(configured)  # from the config; wins over learned ones
        self._learned = dict(learned)  # the replicated record as applied on this node

    def all(self) -> dict[int, str]:
        return {**self._learned, **self._configured}

    def get(self, node_id: int) -> str:
        return self.all().get(node_id, "")

    def apply(self, cc: ConfChange, after: ConfState) -> bool:
        """Follow an applied conf change (``after``: the membership it leaves), as the
        state machine does with its record; True if the book changed."""
        if cc.type == ConfChangeType.REMOVE_NODE:
            return self._learned.pop(cc.node_id, None) is not None
        address = cc.context.decode(errors="replace")
        if not address or cc.node_id in after.removed or self._learned.get(cc.node_id) == address:
            return False
        self._learned[cc.node_id] = address
        return True

    def reload(self, learned: Mapping[int, str]) -> bool:
        """Replace the learned addresses (after a snapshot install); True if changed."""
        if dict(learned) == self._learned:
            return False
        self._learned = dict(learned)
        return True
