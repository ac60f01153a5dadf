"""``KVClient`` over kvraft's asyncio client (``kvraft.Client``).

Error mapping (see ``client.py`` for what the outcomes mean), from the client library's
documented contract:

- ``Unavailable`` (and ``TooStale``, ``ResourceExhausted``): "a write that raises this
  was not applied" -> ``DefiniteFailure``;
- ``InvalidArgument``, ``NotLeader``, ``FailedPrecondition``: refused -> ``DefiniteFailure``;
- ``OutcomeUnknown`` and anything else (timeouts, cancellation by the harness's own
  deadline) -> unknown outcome.

If the library ever breaks that contract (a "definitely not applied" write that was
applied), the checkers see it: a fail op whose value is later read.

cas(key, old, new) is one transaction: ``if value(key) == old`` (``version == 0`` for an
absent key) ``then put(key, new)``. ``scan`` is one ranged read (a single consistent
snapshot, not a paged scan).
"""

from __future__ import annotations

from typing import Any

from .client import Consistency, DefiniteFailure

try:  # kvraft is importable wherever the harness runs against a real cluster
    from kvraft.client import (
        Client,
        Cmp,
        FailedPrecondition,
        InvalidArgument,
        NotLeader,
        Op,
        Unavailable,
    )
except ImportError:  # pragma: no cover - the fakes do not need kvraft
    Client = None  # type: ignore[assignment,misc]

_DEFINITE: tuple[type[BaseException], ...] = ()
if Client is not None:
    _DEFINITE = (Unavailable, InvalidArgument, NotLeader, FailedPrecondition)


class KvraftClient:
    """One kvraft.Client (one session) behind the harness's KVClient interface."""

    def __init__(self, endpoints: list[str], *, timeout: float, attempt_timeout: float = 1.0,
                 use_batch: bool = True) -> None:
        if Client is None:
            raise RuntimeError("kvraft is not importable: install it (pip install -e .)")
        self.client: Any = Client(endpoints, timeout=timeout,
                                  attempt_timeout=min(attempt_timeout, timeout),
                                  use_batch=use_batch)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except _DEFINITE as exc:
            raise DefiniteFailure(f"{type(exc).__name__}: {exc}") from exc

    async def read(self, key: str, consistency: Consistency) -> str | None:
        kv = await self._call(self.client.get(key, consistency=consistency))
        return None if kv is None else bytes(kv.value).decode()

    async def write(self, key: str, value: str) -> None:
        await self._call(self.client.put(key, value))

    async def cas(self, key: str, old: str | None, new: str) -> bool:
        cmp = Cmp.version(key) == 0 if old is None else Cmp.value(key) == old
        res = await self._call(self.client.txn().if_(cmp).then(Op.put(key, new)).commit())
        return bool(res.succeeded)

    async def scan(self, prefix: str, consistency: Consistency) -> list[tuple[str, str]]:
        res = await self._call(self.client.range(prefix, prefix=True, consistency=consistency))
        return [(bytes(kv.key).decode(), bytes(kv.value).decode()) for kv in res.kvs]

    async def close(self) -> None:
        await self.client.close()
