"""Committed membership changes, handed to the core as the driver applies them.

For each committed CONF_CHANGE entry, in log order, the core's ``apply_conf_change`` is
called; the membership it returns is in force from that entry on. The driver
(driver.py) saves the membership after the last entry with the applied index, and
answers the proposer of a conf change with the membership after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kvraft.core.types import ConfChange, ConfState, Entry, EntryType, decode_conf_change
from kvraft.runtime.base import RaftNode


def apply_conf_changes(
    node: RaftNode, committed: Sequence[Entry],
    changed: Callable[[int, ConfChange, ConfState], None],
) -> dict[int, ConfState]:
    """Call the core's apply_conf_change for each committed CONF_CHANGE entry, in
    order, then ``changed(index, change, membership)``; returns the membership after
    each, by index. AssertionError if a CONF_CHANGE entry does not decode."""
    results: dict[int, ConfState] = {}
    for e in committed:
        if e.type != EntryType.CONF_CHANGE:
            continue
        try:
            cc = decode_conf_change(e.data)
        except ValueError as exc:
            raise AssertionError(f"committed entry {e.index} is not a conf change") from exc
        conf = node.apply_conf_change(cc)
        results[e.index] = conf
        changed(e.index, cc, conf)
    return results
