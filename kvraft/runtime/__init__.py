"""kvraft.runtime: the asyncio driver that owns one Raft core (see driver.py).

- :class:`Driver` (driver.py): ticks, inbox, the Ready loop, proposal futures, read waiters.
- :mod:`~kvraft.runtime.base`: what it needs from a state machine and a transport.
"""

from __future__ import annotations

from kvraft.runtime.base import DriverConfig, DriverStats, LocalSnapshot, StateMachine, Transport
from kvraft.runtime.driver import Driver
from kvraft.runtime.errors import DriverStopped, OutcomeUnknown, Overloaded

__all__ = [
    "Driver",
    "DriverConfig",
    "DriverStats",
    "DriverStopped",
    "LocalSnapshot",
    "OutcomeUnknown",
    "Overloaded",
    "StateMachine",
    "Transport",
]
