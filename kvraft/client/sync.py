"""``kvraft.SyncClient``: the blocking client for scripts and threads.

It runs an :class:`~kvraft.client.client.Client` on a private event loop in a daemon
thread, so it works anywhere (including inside a program that runs its own loop in
another thread). Methods take the same arguments as the async client's and block until
the result is ready; it is safe to call them from several threads at once.

    with kvraft.SyncClient("127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103") as c:
        c.put("k", "v")
        print(c.get("k").value)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from kvraft.client.client import Client
from kvraft.client.txn import Compare, Op, Txn
from kvraft.client.types import KeyValue, TxnResult

P = ParamSpec("P")
R = TypeVar("R")


def _blocking(
    method: Callable[Concatenate[Client, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncClient, P], R]:
    def call(self: SyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self._client, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = method.__doc__
    return call


class SyncTxn:
    """A transaction being built for a SyncClient; :meth:`commit` blocks."""

    def __init__(self, owner: SyncClient, txn: Txn) -> None:
        self._owner = owner
        self._txn = txn

    def if_(self, *compares: Compare) -> SyncTxn:
        self._txn.if_(*compares)
        return self

    def then(self, *ops: Op) -> SyncTxn:
        self._txn.then(*ops)
        return self

    def else_(self, *ops: Op) -> SyncTxn:
        self._txn.else_(*ops)
        return self

    def commit(self, *, timeout: float | None = None) -> TxnResult:
        return self._owner._run(self._txn.commit(timeout=timeout))


class SyncClient:
    """Blocking twin of :class:`Client`; same constructor arguments."""

    def __init__(self, endpoints: Sequence[str] | str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()  # runs every call of this client
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="kvraft-client")
        self._thread.start()
        self._closed = False  # set once close() has run

        async def make() -> Client:
            return Client(endpoints, **options)

        try:
            self._client = self._run(make())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, R]) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the client's thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._client.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        async def drain() -> None:  # what asyncio.run does before closing its loop
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._loop.shutdown_asyncgens()

        try:
            self._run(drain())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def leader(self) -> str | None:
        return self._client.leader

    @property
    def endpoints(self) -> list[str]:
        return self._client.endpoints

    get = _blocking(Client.get)
    range = _blocking(Client.range)
    put = _blocking(Client.put)
    delete = _blocking(Client.delete)
    delete_range = _blocking(Client.delete_range)
    status = _blocking(Client.status)
    cluster_status = _blocking(Client.cluster_status)
    members = _blocking(Client.members)
    add_member = _blocking(Client.add_member)
    remove_member = _blocking(Client.remove_member)
    promote_member = _blocking(Client.promote_member)
    transfer_leadership = _blocking(Client.transfer_leadership)
    snapshot = _blocking(Client.snapshot)
    save_snapshot = _blocking(Client.save_snapshot)

    def txn(self) -> SyncTxn:
        """Start a transaction; see :meth:`Client.txn`."""
        return SyncTxn(self, self._client.txn())

    def scan(self, *args: Any, **kwargs: Any) -> Iterator[KeyValue]:
        """Like :meth:`Client.scan`, as a blocking iterator (pages fetched on demand)."""
        agen = self._client.scan(*args, **kwargs)

        async def step() -> tuple[bool, KeyValue | None]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                more, kv = self._run(step())
                if not more or kv is None:
                    return
                yield kv
        finally:
            if not self._closed:
                self._run(agen.aclose())
