"""gRPC glue of the KV service: unary calls and the multiplexed Batch stream.

The logic lives in :class:`~kvraft.server.frontend.KvFrontend`; this module only turns
its results and errors into gRPC responses and statuses (kvraft/server/status.py).

Batch: requests are read as they arrive and each is handled concurrently (one small task
per request, no thread); responses are written in completion order, each with the id of
its request. A failed request yields a BatchResponse with ``error`` set and the stream
stays open. Many requests in flight on one stream reach the driver together and share a
Ready: one fsync and one AppendEntries per follower for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft._pb.kvraft.v1 import kv_pb2_grpc
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
        done: asyncio.Queue[Any] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()
        end = object()  # sentinel: reading finished and every request answered

        async def handle(req: Any) -> None:
            done.put_nowait(await self._one(req))

        async def read_all() -> None:
            try:
                async for req in request_iterator:
                    task = asyncio.create_task(handle(req))
                    running.add(task)
                    task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
            finally:
                done.put_nowait(end)

        reader = asyncio.create_task(read_all())
        try:
            while True:
                resp = await done.get()
                if resp is end:
                    break
                yield resp
            reader.result()  # re-raise a stream-level read error, if any
        finally:
            reader.cancel()
            for task in list(running):
                task.cancel()

    async def _one(self, req: Any) -> Any:
        kind = req.WhichOneof("request")
        resp = pb.BatchResponse(id=req.id)
        try:
            if kind == "range":
                resp.range.CopyFrom(await self._fe.range(req.range))
            elif kind == "put":
                resp.put.CopyFrom(await self._fe.put(req.put))
            elif kind == "delete_range":
                resp.delete_range.CopyFrom(await self._fe.delete_range(req.delete_range))
            elif kind == "txn":
                resp.txn.CopyFrom(await self._fe.txn(req.txn))
            else:
                resp.error.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
                resp.error.message = (
                    "batch request: no request set (range, put, delete_range or txn)"
                )
        except Exception as exc:  # noqa: BLE001 - reported in the response
            f = describe(exc, self._address_of)
            resp.error.code = f.code.value[0]
            resp.error.message = f.message
            resp.error.leader_id = f.leader_id
            resp.error.leader_addr = f.leader_addr
            resp.error.outcome_unknown = f.outcome_unknown
        return resp
