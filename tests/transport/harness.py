"""Real grpc.aio Raft servers on 127.0.0.1 ephemeral ports, and condition waits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc

from kvraft.core.types import InstallSnapshot, Message
from kvraft.transport import wire
from kvraft.transport.service import RaftService

CLUSTER = "test-cluster"
DEADLINE = 20.0
"""Seconds any awaited condition may take before the test fails."""

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test coroutine on a fresh event loop, bounded by a generous deadline."""

    async def bounded() -> T:
        async with asyncio.timeout(DEADLINE * 3):
            return await coro

    return asyncio.run(bounded())


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Signal:
    """Lets a test wait until a condition over recorded events holds."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()

    def poke(self) -> None:
        async def notify() -> None:
            async with self._cond:
                self._cond.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def wait_for(self, pred: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(DEADLINE):
                async with self._cond:
                    await self._cond.wait_for(pred)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for: {what}") from None


class Node:
    """A receiving node: RaftService on a grpc.aio server, recording what arrives."""

    def __init__(self, node_id: int, snapshot_dir: Path, port: int | None = None) -> None:
        self.node_id = node_id
        self.snapshot_dir = snapshot_dir
        self.port = port or 0
        self.frames: list[list[Message]] = []
        self.snapshots: list[tuple[InstallSnapshot, bytes, Path]] = []
        self.signal = Signal()
        self.server: Any = None
        self.service: RaftService | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Message]:
        return [m for f in self.frames for m in f]

    def _on_messages(self, msgs: list[Message]) -> None:
        self.frames.append(msgs)
        self.signal.poke()

    def _on_snapshot(self, msg: InstallSnapshot, path: Path) -> Awaitable[None] | None:
        self.snapshots.append((msg, path.read_bytes(), path))
        self.signal.poke()
        return None

    async def start(self) -> Node:
        self.service = RaftService(
            node_id=self.node_id,
            cluster_id=CLUSTER,
            on_messages=self._on_messages,
            on_snapshot=self._on_snapshot,
            snapshot_dir=self.snapshot_dir,
        )
        self.server = grpc.aio.server(options=list(wire.SERVER_OPTIONS))
        self.service.add_to_server(self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None

    async def wait_messages(self, n: int) -> None:
        await self.signal.wait_for(lambda: len(self.messages) >= n, f"{n} messages")
