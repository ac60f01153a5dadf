"""Many concurrent requests over one long-lived ``KV.Batch`` stream.

A unary gRPC call per operation costs a full call set-up on both sides; the Batch stream
pays it once. Each request gets an id unique on its stream and a future; one reader task
resolves futures as responses arrive, in any order. If the stream breaks, every request
still in flight fails with a :class:`~kvraft.client.failure.Failure` (in doubt unless the
connection was never made) and the next request opens a new stream. Requests that queue
up while one message is being written go out packed into the next one, and the server
packs answers likewise (kv.proto: ``more``), once each side has said it understands:
under load, one stream message carries many operations, which is where the CPU goes.

Lifecycle: each stream has two tasks of ours, a writer (drains the request queue until
the sentinel None) and a reader (resolves futures). When the stream breaks the reader
fails that stream's requests once and puts the sentinel, so the writer ends too; no
async generator is handed to grpc, so none can be closed while it runs. close() cancels
the call and awaits every task, so it leaves none behind; it is idempotent.

Concurrency: all methods run on the event loop that created the stream; requests from
any number of tasks may be in flight at once.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2
from kvraft.batching import LINGER_S, PACKING, announces_packing, pack
from kvraft.client.failure import Failure, Kind, from_batch_error, from_rpc_error, timed_out


class BatchUnsupported(Exception):
    """The server does not implement the Batch stream; use unary calls."""


class BatchStream:
    """One Batch call to one endpoint, opened on first use and re-opened after a break."""

    def __init__(self, stub: Any, endpoint: str) -> None:
        self._stub = stub  # a KVStub on the endpoint's channel
        self.endpoint = endpoint  # address, for failure messages
        self._ids = itertools.count(1)  # request ids; unique for the life of this object
        self._pending: dict[int, asyncio.Future[Any]] = {}  # id -> future, while in flight
        self._queue: asyncio.Queue[Any] | None = None  # requests to write; None = closed
        self._reader: asyncio.Task[None] | None = None  # resolves futures; None = no stream
        self._tasks: set[asyncio.Task[None]] = set()  # readers and writers not yet finished
        self._call: Any = None  # the grpc.aio stream-stream call while open
        self._closed = False  # set by close(); no new requests after it

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def _open(self) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue
        server_packs = [False]  # set once the server's initial metadata says it unpacks
        # reader/writer style (no request iterator): both tasks are ours to end and await
        self._call = call = self._stub.Batch(metadata=PACKING)
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(call, queue, server_packs))
        for task in (self._reader, loop.create_task(self._write(call, queue, server_packs))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, call: Any, queue: asyncio.Queue[Any], server_packs: list[bool]) -> None:
        """Write the queued requests until the sentinel None, then half-close. A broken
        stream ends it with an error, which the reader reports to the requests."""
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                # requests that queued up while the previous message was being written
                # go out together (kv.proto, Batch packing)
                if server_packs[0] and queue.empty() and len(self._pending) > 1:
                    await asyncio.sleep(LINGER_S)
                end = server_packs[0] and not queue.empty() and pack(item, queue, None)
                await call.write(item)
                if end:
                    break
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call is over (the reader says why)

    def _resolve(self, resp: Any) -> None:
        fut = self._pending.pop(resp.id, None)
        if fut is not None and not fut.done():
            fut.set_result(resp)

    async def _read(self, call: Any, queue: asyncio.Queue[Any], server_packs: list[bool]) -> None:
        failure: Failure | BatchUnsupported
        try:
            server_packs[0] = announces_packing(await call.initial_metadata())
            while (resp := await call.read()) is not grpc.aio.EOF:
                self._resolve(resp)
                for packed in resp.more:
                    self._resolve(packed)
            failure = Failure(Kind.IN_DOUBT, "UNAVAILABLE", "the server closed the stream",
                              self.endpoint)
        except grpc.aio.AioRpcError as e:
            if e.code() is grpc.StatusCode.UNIMPLEMENTED:
                failure = BatchUnsupported(str(e.details()))
            else:
                failure = from_rpc_error(e, self.endpoint)
        except asyncio.CancelledError:
            failure = Failure(Kind.IN_DOUBT, "CANCELLED", "the client closed the stream",
                              self.endpoint)
        finally:
            queue.put_nowait(None)  # the writer ends
            if self._queue is queue:  # this stream is over; the next request opens anew
                self._queue, self._reader, self._call = None, None, None
        # every request of this stream fails, once; later ones go to the next stream
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(failure)

    async def request(self, timeout: float, **op: Any) -> Any:
        """Send one request (``range=..``, ``put=..``, ``delete_range=..`` or ``txn=..``)
        and return the response message of the same kind. Raises Failure (including a
        timeout after ``timeout`` seconds, in doubt) or BatchUnsupported."""
        if self._closed:
            raise Failure(Kind.FATAL, "CANCELLED", "client closed", self.endpoint)
        if self._queue is None:
            self._open()
        assert self._queue is not None
        req_id = next(self._ids)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[req_id] = fut
        self._queue.put_nowait(kv_pb2.BatchRequest(id=req_id, **op))
        # one timer on the request's own future (asyncio.wait_for adds a second future
        # and callbacks per request: measurable CPU at thousands of requests a second)
        timer = loop.call_later(timeout, _expire, fut)
        try:
            resp = await fut
        except _Expired:
            raise timed_out(self.endpoint, timeout) from None
        finally:
            timer.cancel()
            self._pending.pop(req_id, None)
        kind = resp.WhichOneof("response")
        if kind == "error":
            raise from_batch_error(resp.error, self.endpoint)
        return getattr(resp, kind)

    async def close(self) -> None:
        """End the stream and wait for its tasks; requests still in flight fail (in
        doubt). Idempotent."""
        self._closed = True
        if self._queue is not None:
            self._queue.put_nowait(None)
        if self._call is not None:
            self._call.cancel()
        while self._tasks:  # a stream re-opened meanwhile has tasks too
            tasks = set(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks -= tasks


class _Expired(Exception):
    """A Batch request's own deadline passed before its answer came."""


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(_Expired())
