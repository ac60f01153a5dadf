"""gRPC glue of the KV service: unary calls and the multiplexed Batch stream.

The logic lives in :class:`~kvraft.server.frontend.KvFrontend`; this module only turns
its results and errors into gRPC responses and statuses (kvraft/server/status.py).

Batch: requests are read as they arrive and each is started at once (no task and no
thread per request: completion callbacks queue the answers); responses are written in
completion order, each with the id of its request. A failed request yields a
BatchResponse with ``error`` set and the stream stays open. Many requests in flight on
one stream reach the driver together and share a Ready: one fsync and one AppendEntries
per follower for all of them. Requests may arrive packed several to a message, and
answers that are ready together go out packed to a client that reads packing
(kvraft/batching.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft._pb.kvraft.v1 import kv_pb2_grpc
from kvraft.batching import PACKING, announces_packing, pack
from kvraft.server.frontend import KvFrontend
from kvraft.server.status import describe


class KvService(kv_pb2_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self, frontend: KvFrontend, address_of: Callable[[int], str]) -> None:
        self._fe = frontend
        self._address_of = address_of

    async def _abort(self, context: Any, exc: Exception) -> None:
        f = describe(exc, self._address_of)
        await context.abort(f.code, f.message, trailing_metadata=f.trailing_metadata())

    async def Range(self, request: Any, context: Any) -> Any:
        try:
            return await self._fe.range(request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            await self._abort(context, exc)

    async def Put(self, request: Any, context: Any) -> Any:
        try:
            return await self._fe.put(request)
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)

    async def DeleteRange(self, request: Any, context: Any) -> Any:
        try:
            return await self._fe.delete_range(request)
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)

    async def Txn(self, request: Any, context: Any) -> Any:
        try:
            return await self._fe.txn(request)
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)

    async def Batch(self, request_iterator: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        answers: asyncio.Queue[Any] = asyncio.Queue()  # BatchResponses, or _READ_DONE
        pending = 0  # requests read and not yet answered
        # packing (kv.proto): the client reads `more` iff it said so; we always read it
        packs = announces_packing(context.invocation_metadata())
        await context.send_initial_metadata(PACKING)

        room = asyncio.Event()  # set while pending < MAX_PENDING
        room.set()

        async def read_all() -> None:
            nonlocal pending
            try:
                async for msg in request_iterator:
                    for req in (msg, *msg.more) if msg.more else (msg,):
                        pending += 1
                        self._dispatch(req, answers.put_nowait)
                    if pending >= MAX_PENDING:  # answers pile up unread: stop reading
                        room.clear()
                        await room.wait()
            finally:
                answers.put_nowait(_READ_DONE)

        reader = asyncio.create_task(read_all())
        try:
            reading = True
            while reading or pending:
                item = await answers.get()
                read_done = item is _READ_DONE
                if not read_done:
                    pending -= 1
                    if packs:
                        read_done = pack(item, answers, _READ_DONE)
                        pending -= len(item.more)
                    if pending < MAX_PENDING:
                        room.set()
                    yield item
                if read_done:
                    reading = False
                    if reader.exception() is not None:
                        raise reader.exception()  # type: ignore[misc]
        finally:
            reader.cancel()

    def _dispatch(self, req: Any, emit: Callable[[Any], None]) -> None:
        """Start one Batch request; ``emit`` gets its BatchResponse exactly once."""
        rid = req.id
        kind = req.WhichOneof("request")

        def done(resp: Any, exc: BaseException | None) -> None:
            out = pb.BatchResponse(id=rid)
            try:
                if exc is None:
                    getattr(out, kind).CopyFrom(resp)
                else:
                    self._error(out, exc)
            except Exception as err:  # noqa: BLE001 - the request must still be answered
                self._error(out, err)
            emit(out)

        if kind == "range":
            self._fe.start_range(req.range, done)
        elif kind in ("put", "delete_range", "txn"):
            self._fe.start_write(getattr(req, kind), done)
        else:
            out = pb.BatchResponse(id=rid)
            out.error.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            out.error.message = "batch request: no request set (range, put, delete_range or txn)"
            emit(out)

    def _error(self, out: Any, exc: BaseException) -> None:
        f = describe(exc, self._address_of)
        out.ClearField("response")
        out.error.code = f.code.value[0]
        out.error.message = f.message
        out.error.leader_id = f.leader_id
        out.error.leader_addr = f.leader_addr
        out.error.outcome_unknown = f.outcome_unknown


MAX_PENDING = 8192
"""Requests of one Batch stream read and not yet answered on the wire, beyond which the
server stops reading the stream (a client that does not read its answers is held back by
gRPC flow control instead of growing the server's memory)."""

_READ_DONE = object()
"""Queued after the last request of a Batch stream was read."""
