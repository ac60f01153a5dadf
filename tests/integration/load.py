"""A bounded write load for fault tests: N writers, each with its own session, writing
unique keys in order and retrying each write (same session seq) until it is acknowledged.

Runs its own asyncio loop (grpc.aio) in a background thread, so the test thread can kill
and restart nodes meanwhile. It records exactly which writes were acknowledged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft._pb.kvraft.v1 import kv_pb2_grpc

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


class WriteLoad:
    def __init__(self, addresses: list[str], writers: int = 8, max_writes: int = 2000,
                 prefix: str = "load") -> None:
        self.addresses = addresses  # every node's address
        self.writers = writers
        self.max_writes = max_writes  # per writer: the load is bounded in count
        self.prefix = prefix
        self.acked: set[tuple[int, int]] = set()  # (writer, seq) acknowledged by a leader
        self.errors: list[str] = []  # non-retryable failures (should stay empty)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def key(self, writer: int, seq: int) -> bytes:
        return f"{self.prefix}/{writer:02d}/{seq:06d}".encode()

    def value(self, writer: int, seq: int) -> bytes:
        return f"v{writer}-{seq}".encode()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "load did not stop"

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    async def _main(self) -> None:
        channels = {a: grpc.aio.insecure_channel(a) for a in self.addresses}
        stubs = {a: kv_pb2_grpc.KVStub(ch) for a, ch in channels.items()}
        try:
            await asyncio.gather(*(self._writer(w, stubs) for w in range(self.writers)))
        finally:
            for ch in channels.values():
                await ch.close()

    async def _writer(self, w: int, stubs: dict[str, Any]) -> None:
        target = self.addresses[0]
        turn = 0
        for seq in range(1, self.max_writes + 1):
            req = pb.PutRequest(key=self.key(w, seq), value=self.value(w, seq),
                                session=pb.Session(client_id=1000 + w, seq=seq))
            deadline = time.monotonic() + 30
            while not self._stop.is_set():
                try:
                    await stubs[target].Put(req, timeout=2)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRYABLE:
                        self.errors.append(f"{target}: {exc.code()}: {exc.details()}")
                        return
                    hint = dict(exc.trailing_metadata() or ()).get("x-kvraft-leader-addr")
                    if hint in stubs:
                        target = hint
                    else:
                        turn += 1
                        target = self.addresses[turn % len(self.addresses)]
                        await asyncio.sleep(0.05)
                    if time.monotonic() > deadline:
                        self.errors.append(f"write {w}/{seq} not acknowledged within 30s")
                        return
                    continue
                with self._lock:
                    self.acked.add((w, seq))
                break
            if self._stop.is_set():
                return
