"""The client's view of the cluster: one channel per node address, the cached leader,
which nodes recently failed, and the order in which to try them.

Channels are created lazily on the client's event loop and shared by every concurrent
caller. A node that refused a connection is skipped for a short, growing while (unless
every node is skipped), so a dead node does not cost each request a connection attempt.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2_grpc, kv_pb2_grpc
from kvraft.client.failure import Failure, Kind
from kvraft.client.mux import BatchStream

# Reconnect quickly to a node that comes back (grpc's default backoff reaches 120 s).
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]

STALE_TURN_S = 0.002  # longest turn of one busy node in any() (see there)
DOWN_BASE = 0.2  # seconds a node is skipped after its first connection failure
DOWN_CAP = 2.0  # ... growing by doubling up to this


def normalize_address(address: str) -> str:
    """Accept "host:port", "http://host:port" or "grpc://host:port"; return "host:port"."""
    address = address.strip()
    for scheme in ("http://", "https://", "grpc://"):
        if address.startswith(scheme):
            address = address[len(scheme):]
    address = address.rstrip("/")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"endpoint {address!r} is not host:port")
    return address


@dataclass
class Endpoint:
    """One node address and the connection objects the client keeps for it."""

    address: str  # "host:port"
    channel: grpc.aio.Channel | None = None  # created on first use
    kv: Any = None  # KVStub on channel
    admin: Any = None  # AdminStub on channel
    stream: BatchStream | None = None  # the multiplexed Batch stream, once used
    batch_supported: bool = True  # False once the node answered UNIMPLEMENTED to Batch
    failures: int = 0  # consecutive connection failures
    down_until: float = 0.0  # monotonic time before which the node is skipped
    closed: bool = False  # set by close(); no channel or stream is opened after it

    def connect(self) -> None:
        """Open the channel if needed; a Failure (FATAL) once the client is closed."""
        if self.closed:
            raise Failure(Kind.FATAL, "CANCELLED", "the client is closed", self.address)
        if self.channel is None:
            self.channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
            self.kv = kv_pb2_grpc.KVStub(self.channel)
            self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def batch(self) -> BatchStream:
        self.connect()
        if self.stream is None:
            self.stream = BatchStream(self.kv, self.address)
        return self.stream

    async def close(self) -> None:
        self.closed = True
        if self.stream is not None:
            await self.stream.close()
            self.stream = None
        if self.channel is not None:
            await self.channel.close()
            self.channel = None


@dataclass
class EndpointPool:
    """The known node addresses (the seeds plus any leader address a node named)."""

    seeds: list[str]  # the caller's endpoints, normalized, in order, non-empty
    rng: random.Random = field(default_factory=random.Random)  # for spreading reads
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # address -> Endpoint
    leader: str | None = None  # cached leader address; None = unknown
    _next: int = 0  # round-robin position for leaderless and stale requests
    _turn_ends: float = 0.0  # monotonic time the current node's turn ends (see any())

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("a client needs at least one endpoint (host:port)")
        for a in self.seeds:
            self.get(a)
        self._next = self.rng.randrange(len(self.seeds))

    def get(self, address: str) -> Endpoint:
        ep = self.endpoints.get(address)
        if ep is None:
            ep = self.endpoints[address] = Endpoint(address)
        return ep

    def _usable(self, now: float) -> list[Endpoint]:
        eps = list(self.endpoints.values())
        up = [e for e in eps if e.down_until <= now]
        return up or sorted(eps, key=lambda e: e.down_until)

    def for_leader(self) -> Endpoint:
        """Where to send a leader-only request: the cached leader, else the next node in
        round-robin order (it will redirect us if it knows better)."""
        if self.leader is not None:
            return self.get(self.leader)
        return self.any()

    def any(self, *, move: bool = False) -> Endpoint:
        """A usable node for STALE reads and discovery, in round-robin order. A node
        whose Batch stream is busy keeps its turn for up to STALE_TURN_S, so a burst of
        concurrent reads shares that stream's messages instead of being dealt out one
        per node (a stream message costs far more CPU than what it carries); requests
        one after another still rotate. ``move`` ends the turn (a retry after this
        node failed goes to the next one)."""
        now = time.monotonic()
        usable = self._usable(now)
        ep = usable[self._next % len(usable)]
        busy = ep.stream is not None and ep.stream.in_flight > 0
        if move or not busy or now >= self._turn_ends:
            self._next += 1
            self._turn_ends = now + STALE_TURN_S
            ep = usable[self._next % len(usable)]
        return ep

    def set_leader(self, address: str | None) -> None:
        self.leader = address
        if address is not None:
            self.get(address)

    def redirect(self, failed: str, leader_addr: str) -> bool:
        """A node named ``leader_addr`` as leader: cache it. True if that is news (a
        different node than the one that failed), so retrying there at once is useful."""
        if not leader_addr or leader_addr == failed:
            return False
        self.set_leader(leader_addr)
        return True

    def mark_ok(self, address: str) -> None:
        ep = self.get(address)
        ep.failures, ep.down_until = 0, 0.0

    def mark_down(self, address: str) -> None:
        """The node refused a connection: skip it for a while, forget it as leader."""
        ep = self.get(address)
        ep.failures += 1
        # every concurrent request that failed counts: bound the exponent (2.0 ** 1100
        # overflows a float)
        doubling = min(ep.failures - 1, 16)
        ep.down_until = time.monotonic() + min(DOWN_CAP, DOWN_BASE * 2 ** doubling)
        if self.leader == address:
            self.leader = None

    def forget_leader(self, address: str) -> None:
        if self.leader == address:
            self.leader = None

    async def close(self) -> None:
        for ep in self.endpoints.values():
            await ep.close()
        # grpc finishes a cancelled call's bookkeeping in a task of its own: let it run
        # before the caller closes the event loop
        for _ in range(3):
            await asyncio.sleep(0)
