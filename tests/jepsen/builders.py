"""Test helpers: hand-written histories (one tuple per event, time = position) and a
deadline-bounded wait for asyncio tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)
