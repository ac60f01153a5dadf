"""The gRPC metrics interceptor on a real grpc.aio server: every call is counted once with
the status code the client saw, streams keep working through it, and a stream the client
cancels is closed at once (its cleanup runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft._pb.kvraft.v1 import kv_pb2_grpc, raft_pb2, raft_pb2_grpc
from kvraft.server.grpc_metrics import GrpcMetrics

KV = "/kvraft.v1.KV/"


class FakeKV(kv_pb2_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.closed = asyncio.Event()  # a Batch stream's cleanup ran

    async def Put(self, request: Any, context: Any) -> Any:
        if request.key == b"bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key: bad")
        if request.key == b"boom":
            raise RuntimeError("a bug")
        return pb.PutResponse()

    async def Batch(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        try:
            async for req in requests:
                if req.put.key == b"hang":
                    await asyncio.Event().wait()
                yield pb.BatchResponse(id=req.id)
        finally:
            self.closed.set()


class FakeRaft(raft_pb2_grpc.RaftServicer):  # type: ignore[misc]
    async def Send(self, requests: AsyncIterator[Any], context: Any) -> Any:
        n = 0
        async for batch in requests:
            n += len(batch.messages)
        return raft_pb2.SendAck(received=n)


def run(test: Any) -> None:
    async def main() -> None:
        metrics = GrpcMetrics()
        server = grpc.aio.server(interceptors=[metrics])
        kv = FakeKV()
        kv_pb2_grpc.add_KVServicer_to_server(kv, server)
        raft_pb2_grpc.add_RaftServicer_to_server(FakeRaft(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await asyncio.wait_for(test(channel, metrics, kv), 20)
        finally:
            await server.stop(None)

    asyncio.run(main())


def test_unary_calls_counted_by_code() -> None:
    async def t(channel: Any, m: GrpcMetrics, _kv: FakeKV) -> None:
        stub = kv_pb2_grpc.KVStub(channel)
        for key in (b"a", b"b", b"bad", b"boom"):
            try:
                await stub.Put(pb.PutRequest(key=key))
            except grpc.aio.AioRpcError:
                pass
        assert m.started == {(KV + "Put", "unary"): 4}
        assert m.handled == {
            (KV + "Put", "unary", "OK"): 2,
            (KV + "Put", "unary", "INVALID_ARGUMENT"): 1,
            (KV + "Put", "unary", "UNKNOWN"): 1,
        }

    run(t)


def test_bidi_stream_passes_through_and_is_counted_once() -> None:
    async def t(channel: Any, m: GrpcMetrics, _kv: FakeKV) -> None:
        call = kv_pb2_grpc.KVStub(channel).Batch()
        for i in range(50):
            await call.write(pb.BatchRequest(id=i, put=pb.PutRequest(key=b"k")))
        await call.done_writing()
        ids = [r.id async for r in call]
        assert ids == list(range(50))
        assert m.handled == {(KV + "Batch", "bidi_stream", "OK"): 1}

    run(t)


def test_cancelled_stream_is_closed_and_counted() -> None:
    async def t(channel: Any, m: GrpcMetrics, kv: FakeKV) -> None:
        call = kv_pb2_grpc.KVStub(channel).Batch()
        await call.write(pb.BatchRequest(id=1, put=pb.PutRequest(key=b"hang")))
        while m.started.get((KV + "Batch", "bidi_stream")) != 1:
            await asyncio.sleep(0.005)
        call.cancel()
        await asyncio.wait_for(kv.closed.wait(), 5)
        while not m.handled:
            await asyncio.sleep(0.005)
        assert m.handled == {(KV + "Batch", "bidi_stream", "CANCELLED"): 1}

    run(t)


def test_raft_bytes_received_are_counted_exactly() -> None:
    async def t(channel: Any, m: GrpcMetrics, _kv: FakeKV) -> None:
        batches = [raft_pb2.MessageBatch() for _ in range(3)]
        for b in batches:
            b.messages.add()
        call = raft_pb2_grpc.RaftStub(channel).Send()
        for b in batches:
            await call.write(b)
        await call.done_writing()
        ack = await call
        assert ack.received == 3
        assert m.raft_bytes_received == sum(b.ByteSize() for b in batches)
        assert m.handled == {("/kvraft.v1.Raft/Send", "client_stream", "OK"): 1}

    run(t)

