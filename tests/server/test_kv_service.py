"""The KV Batch stream's resource bounds, against a frontend that answers at once.

A client that keeps sending requests but does not read the answers must not make the
server buffer answers without bound: once a stream has MAX_PENDING requests read and not
yet answered on the wire, the server stops reading it (gRPC flow control then holds the
client back).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.server import kv_service
from kvraft.server.kv_service import KvService


class _InstantFrontend:
    """Answers every read at once (like a STALE read) and counts what it was asked."""

    def __init__(self) -> None:
        self.started = 0

    def start_range(self, req: Any, done: Any) -> None:
        self.started += 1
        done(pb.RangeResponse(), None)


class _Context:
    def invocation_metadata(self) -> tuple[Any, ...]:
        return ()

    async def send_initial_metadata(self, _md: Any) -> None:
        return None


def test_batch_stream_stops_reading_while_answers_pile_up_unread() -> None:
    total = 4 * kv_service.MAX_PENDING
    read = 0

    async def requests() -> AsyncIterator[Any]:
        nonlocal read
        for i in range(total):
            read += 1
            yield pb.BatchRequest(id=i, range=pb.RangeRequest(key=b"k"))

    async def main() -> None:
        fe = _InstantFrontend()
        stream = KvService(fe, lambda _n: "").Batch(requests(), _Context())  # type: ignore[arg-type]
        first = await anext(stream)  # the client reads one answer, then stops reading
        assert first.id == 0
        for _ in range(10):
            await asyncio.sleep(0)  # let the server's reader run as far as it will
        assert read <= kv_service.MAX_PENDING + 1, f"{read} requests read, none answered"
        # once the client reads again, every request is answered, in order
        ids = [first.id] + [r.id async for r in stream]
        assert ids == list(range(total))
        assert fe.started == total

    asyncio.run(asyncio.wait_for(main(), 60))
