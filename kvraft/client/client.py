"""The asyncio client: ``kvraft.Client``.

    async with kvraft.Client(["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"]) as c:
        await c.put("greeting", "hello")
        kv = await c.get("greeting")                      # KeyValue or None
        async for kv in c.scan(prefix="user/"):           # pages under the hood
            ...
        r = await c.txn().if_(Cmp.version("k") == 0).then(Op.put("k", "v")).commit()

One client is meant to be shared by all of a program's tasks: they share its channels
and its multiplexed streams. All methods take ``timeout`` (seconds, the overall
deadline for the call including retries; default: the client's). Errors are the typed
exceptions of :mod:`kvraft.client.errors`; the retry rules are in
:mod:`kvraft.client.retry`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Sequence
from types import TracebackType
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2
from kvraft.client.admin import AdminMixin
from kvraft.client.retry import Policy
from kvraft.client.txn import Txn
from kvraft.client.types import (
    Bytesish,
    Consistency,
    DeleteResult,
    KeyValue,
    PutResult,
    RangeResult,
    TxnResult,
    prefix_end,
    range_request,
    to_bytes,
)


class Client(AdminMixin):
    """An asyncio client of one kvraft cluster.

    ``endpoints``: node addresses ("host:port"), a list or a comma-separated string; any
    subset of the cluster will do (the leader's address is learned from redirects).
    ``timeout``: default overall deadline per call (seconds). ``attempt_timeout``: bound
    on one attempt, after which the client tries again (maybe elsewhere).
    ``follow_redirects=False`` makes a follower's refusal raise NotLeader instead.
    ``use_batch=False`` sends one unary call per operation instead of multiplexing over
    the Batch stream. Create and use it inside one event loop; close it (or use
    ``async with``) when done.
    """

    def __init__(self, endpoints: Sequence[str] | str, *, timeout: float = 5.0,
                 attempt_timeout: float = 2.0, follow_redirects: bool = True,
                 use_batch: bool = True, backoff_base: float = 0.025,
                 backoff_cap: float = 1.0, rng: random.Random | None = None) -> None:
        policy = Policy(timeout=timeout, attempt_timeout=attempt_timeout,
                        backoff_base=backoff_base, backoff_cap=backoff_cap,
                        follow_redirects=follow_redirects, use_batch=use_batch)
        seeds = endpoints.split(",") if isinstance(endpoints, str) else tuple(endpoints)
        super().__init__(seeds, policy, rng)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def leader(self) -> str | None:
        """The address the client currently believes is the leader (None if unknown)."""
        return self._pool.leader

    @property
    def endpoints(self) -> list[str]:
        """Every node address known to the client (seeds first, then learned ones)."""
        return list(self._pool.endpoints)

    # ------------------------------------------------------------------ reads
    async def _range(self, req: Any, consistency: Consistency, timeout: float | None,
                     what: str) -> RangeResult:
        target = "any" if consistency is Consistency.STALE else "leader"

        async def attempt(ep: Any, t: float) -> Any:
            return await self._kv(ep, "range", req, t)

        resp = await self._retry(what, attempt, target=target, timeout=timeout)
        return RangeResult.from_pb(resp)

    async def get(self, key: Bytesish, *,
                  consistency: Consistency | str = Consistency.LINEARIZABLE,
                  max_staleness: float | None = None,
                  timeout: float | None = None) -> KeyValue | None:
        """The key's value and revisions, or None if it does not exist.

        ``consistency``: LINEARIZABLE (default; sees every write acknowledged before the
        call), LEASE (leader, no network round while its lease holds) or STALE (any node,
        may be behind; with ``max_staleness`` seconds a node refuses unless it knows it
        is that fresh, and the client asks another one)."""
        level = Consistency.parse(consistency)
        req = range_request(to_bytes(key), consistency=level,
                            max_staleness_ms=_staleness_ms(level, max_staleness))
        r = await self._range(req, level, timeout, f"get {_show(key)}")
        return r.kvs[0] if r.kvs else None

    async def range(self, key: Bytesish, range_end: Bytesish = b"", *, prefix: bool = False,
                    limit: int = 0, keys_only: bool = False, count_only: bool = False,
                    consistency: Consistency | str = Consistency.LINEARIZABLE,
                    max_staleness: float | None = None,
                    timeout: float | None = None) -> RangeResult:
        """One page of keys: ``key`` alone, every key with prefix ``key``
        (``prefix=True``), or [key, range_end) (``range_end=b"\\0"``: to the end).
        ``limit`` caps the keys returned (0 = no cap; ``more`` says if some were left).
        For large ranges use :meth:`scan`."""
        level = Consistency.parse(consistency)
        req = range_request(to_bytes(key), to_bytes(range_end), prefix=prefix, limit=limit,
                            keys_only=keys_only, count_only=count_only, consistency=level,
                            max_staleness_ms=_staleness_ms(level, max_staleness))
        what = "range" if prefix or range_end else "get"
        return await self._range(req, level, timeout, f"{what} {_show(key)}")

    async def scan(self, key: Bytesish = b"", range_end: Bytesish | None = None, *,
                   prefix: Bytesish | None = None, limit: int = 0, page_size: int = 1000,
                   keys_only: bool = False,
                   consistency: Consistency | str = Consistency.LINEARIZABLE,
                   max_staleness: float | None = None,
                   timeout: float | None = None) -> AsyncGenerator[KeyValue, None]:
        """Iterate key-values in key order: keys starting with ``prefix``, or
        [key, range_end) (``range_end=None``: to the end of the key space). Fetches
        ``page_size`` keys per request; stops after ``limit`` keys (0 = all). Each page is
        a separate read at ``consistency``, so a long scan is not one snapshot;
        ``timeout`` applies per page."""
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        if prefix is not None:
            start = to_bytes(prefix)
            end = prefix_end(start) if start else b"\0"
        else:
            start = to_bytes(key)
            end = b"\0" if range_end is None else to_bytes(range_end)
        start = start or b"\0"
        level = Consistency.parse(consistency)
        staleness = _staleness_ms(level, max_staleness)
        left = limit
        while True:
            page = page_size if left <= 0 else min(page_size, left)
            req = range_request(start, end, limit=page, keys_only=keys_only,
                                consistency=level, max_staleness_ms=staleness)
            r = await self._range(req, level, timeout, f"scan from {_show(start)}")
            for kv in r.kvs:
                yield kv
            if limit:
                left -= len(r.kvs)
                if left <= 0:
                    return
            if not r.more or not r.kvs:
                return
            start = r.kvs[-1].key + b"\0"

    # ------------------------------------------------------------------ writes
    async def put(self, key: Bytesish, value: Bytesish, *, prev_kv: bool = False,
                  timeout: float | None = None) -> PutResult:
        """Write one key, exactly once. Raises OutcomeUnknown if the deadline passes
        while the outcome is in doubt, InvalidArgument for an empty or oversized key or
        value, Unavailable if no leader could take it (then it was not applied)."""
        req = kv_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value), prev_kv=prev_kv)
        return PutResult.from_pb(await self._write(f"put {_show(key)}", "put", req, timeout))

    async def delete(self, key: Bytesish, *, prev_kv: bool = False,
                     timeout: float | None = None) -> DeleteResult:
        """Delete one key (``deleted`` is 0 if it did not exist)."""
        return await self.delete_range(key, prev_kv=prev_kv, timeout=timeout)

    async def delete_range(self, key: Bytesish, range_end: Bytesish = b"", *,
                           prefix: bool = False, prev_kv: bool = False,
                           timeout: float | None = None) -> DeleteResult:
        """Delete ``key``, every key with prefix ``key`` (``prefix=True``) or
        [key, range_end), atomically and exactly once."""
        k, end = to_bytes(key), to_bytes(range_end)
        if prefix:
            k, end = k or b"\0", prefix_end(k) if k else b"\0"
        req = kv_pb2.DeleteRangeRequest(key=k, range_end=end, prev_kv=prev_kv)
        resp = await self._write(f"delete {_show(key)}", "delete_range", req, timeout)
        return DeleteResult.from_pb(resp)

    def txn(self) -> Txn:
        """Start a transaction: ``.if_(...).then(...).else_(...)``, then ``await
        .commit()``. See :mod:`kvraft.client.txn`."""
        return Txn(self._send_txn)

    async def _send_txn(self, req: Any, timeout: float | None) -> TxnResult:
        return TxnResult.from_pb(await self._write("txn", "txn", req, timeout))


def _staleness_ms(level: Consistency, max_staleness: float | None) -> int:
    if max_staleness is None:
        return 0
    if level is not Consistency.STALE:
        raise ValueError("max_staleness applies only to STALE reads")
    if max_staleness <= 0:
        raise ValueError("max_staleness must be positive (seconds)")
    return max(1, round(max_staleness * 1000))


def _show(key: Bytesish) -> str:
    """A key for messages: text if printable, else repr, cut to 60 characters."""
    text = key if isinstance(key, str) else key.decode("utf-8", errors="replace")
    shown = text if text.isprintable() else repr(key)
    return shown if len(shown) <= 60 else shown[:57] + "..."
