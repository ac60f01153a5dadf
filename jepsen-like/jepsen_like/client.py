"""The client interface the workloads drive, and how its errors become history outcomes.

A ``KVClient`` is what a worker calls. kvraft's ``kvraft.Client`` is adapted to it by
``jepsen_like.kvraft_client``; ``jepsen_like.fakes`` has in-process stores for tests.

Outcome rules (how the worker records a completion):

- the call returns -> ``ok`` (``cas`` returning False -> ``fail``: the compare failed, so
  the cas certainly had no effect);
- it raises :class:`DefiniteFailure` -> ``fail``: the operation certainly did not take
  effect (refused before being proposed, invalid argument, no leader reachable);
- it raises anything else, or times out -> ``info`` for writes (it may have taken effect,
  now or later), ``fail`` for reads (a read that returned nothing changed nothing).
"""

from __future__ import annotations

from typing import Literal, Protocol

Consistency = Literal["linearizable", "lease", "stale"]
CONSISTENCIES: tuple[Consistency, ...] = ("linearizable", "lease", "stale")


class DefiniteFailure(Exception):
    """The operation certainly did not take effect. The message says why."""


class KVClient(Protocol):
    """One logical client connection. Keys and values are str; values are unique per key
    in the workloads. Every method may raise DefiniteFailure (see module docstring) or
    any other exception (unknown outcome)."""

    async def read(self, key: str, consistency: Consistency) -> str | None:
        """The key's value, or None if absent."""
        ...

    async def write(self, key: str, value: str) -> None:
        """Set key to value."""
        ...

    async def cas(self, key: str, old: str | None, new: str) -> bool:
        """Atomically set key to new iff its value is old (None: iff absent). False if the
        compare failed (nothing written)."""
        ...

    async def scan(self, prefix: str, consistency: Consistency) -> list[tuple[str, str]]:
        """Every (key, value) with the prefix, in key order, as one consistent read."""
        ...

    async def close(self) -> None:
        ...


class ClientFactory(Protocol):
    """Makes the client a worker uses; ``worker`` is 0..concurrency-1 (``-1`` for the
    final reads). Implementations may share one connection between workers."""

    async def __call__(self, worker: int) -> KVClient:
        ...
