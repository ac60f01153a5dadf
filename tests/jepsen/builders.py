"""Hand-written histories for checker tests: one tuple per event, time = position."""

from __future__ import annotations

from typing import Any

from jepsen_like.history import Event, Op, pair


def events(*rows: tuple[Any, ...]) -> list[Event]:
    """rows: (type, process, f, key, value[, extra dict])."""
    out = []
    for i, row in enumerate(rows):
        etype, process, f, key, value = row[:5]
        extra = row[5] if len(row) > 5 else {}
        out.append(Event(i, etype, process, f, key, value, i * 1000, extra=extra))
    return out


def ops(*rows: tuple[Any, ...]) -> list[Op]:
    return pair(events(*rows))
