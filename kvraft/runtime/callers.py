"""The futures the driver hands to its callers, and how they are settled.

Every public coroutine of the driver (driver.py) waits on a future made by
``CallerFutures.new`` on the event loop; the driver task settles it. When the driver
stops, ``fail_all`` fails every future not yet settled (with DriverStopped), so no
caller waits forever. Used only on the driver's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CallerFutures:
    """Caller futures not yet resolved, for one driver."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Future[Any]] = set()  # caller futures not yet resolved

    def new(self) -> asyncio.Future[Any]:
        """A future for a caller, remembered until it is done."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.add(fut)
        fut.add_done_callback(self._waiting.discard)
        return fut

    def fail_all(self, error: Callable[[], BaseException]) -> None:
        """Fail every future not yet done with a fresh ``error()``."""
        for fut in list(self._waiting):  # callers whose work was still queued
            if not fut.done():
                fut.set_exception(error())
        self._waiting.clear()


def settle(fut: asyncio.Future[T], fn: Callable[[], T]) -> None:
    """Run ``fn`` and put its result or exception into ``fut`` (unless already done)."""
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - handed to the caller
        if not fut.done():
            fut.set_exception(exc)
        return
    if not fut.done():
        fut.set_result(result)


def chain(src: asyncio.Future[T], dst: asyncio.Future[T]) -> None:
    """Copy the outcome of the done future ``src`` into ``dst`` (unless already done)."""
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif src.exception() is not None:
        dst.set_exception(src.exception() or RuntimeError())
    else:
        dst.set_result(src.result())
