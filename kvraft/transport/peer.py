"""The sending end of the peer transport: one long-lived gRPC stream per peer.

Theory of operation
- ``send(msgs)`` is synchronous and never blocks: it appends each message to its
  destination's queue and wakes that peer's writer task. It must be called on the event
  loop that created the transport (it is not thread-safe).
- Each peer has one writer task. It opens a ``Raft.Send`` call, waits for the receiver's
  initial metadata (the handshake: the receiver accepted our cluster id and node ids),
  then drains its queue into MessageBatch frames: as many queued messages as fit in
  ``max_batch_msgs`` / ``max_batch_bytes``. While one frame is being written, new
  messages pile up and go out together in the next frame, so batching grows with load.
- Queues are bounded by count and bytes. When full, the OLDEST messages are dropped and
  counted: Raft tolerates loss, and the newest messages carry the freshest state.
- When a stream breaks (peer down, write stuck longer than ``write_timeout``, handshake
  refused) the writer reports the peer via ``on_unreachable(peer_id)`` (the runtime calls
  ``RawNode.report_unreachable``), waits an exponential backoff with jitter, and opens a
  new stream. Messages of the frame that was being written are lost (counted as dropped);
  queued ones go out on the next stream.
- Snapshots go on their own ``Raft.InstallSnapshot`` call (:meth:`PeerTransport.send_snapshot`)
  so a large transfer never delays heartbeats; the outcome is reported through
  ``on_snapshot_status(peer_id, ok)`` (the runtime calls ``RawNode.report_snapshot``).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

from kvraft._pb.kvraft.v1 import raft_pb2, raft_pb2_grpc
from kvraft.core.types import InstallSnapshot, Message
from kvraft.errors import SnapshotError
from kvraft.transport import codec, snapshot, wire

log = structlog.get_logger(__name__)

_STREAM_ERRORS = (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError)
"""What a broken or stuck stream raises from write/handshake (the latter for a write or
handshake that timed out; InvalidStateError for a call the peer already ended)."""


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Tuning of the peer transport; the defaults suit a LAN cluster."""

    max_queue_msgs: int = 4096  # per peer; beyond it the oldest queued messages are dropped
    max_queue_bytes: int = 64 << 20  # per peer, by message_size(); same drop rule
    max_batch_msgs: int = 512  # messages per MessageBatch frame
    max_batch_bytes: int = 4 << 20  # approximate bytes per frame (at least one message)
    handshake_timeout: float = 5.0  # seconds to wait for the receiver to accept a stream
    write_timeout: float = 5.0  # seconds one frame may take before the stream is dropped
    backoff_min: float = 0.05  # first reconnect delay, seconds
    backoff_max: float = 1.0  # reconnect delay cap, seconds
    snapshot_chunk_bytes: int = snapshot.DEFAULT_CHUNK_SIZE
    snapshot_ack_timeout: float = 120.0  # seconds for the receiver to install and ack
    keepalive_ms: int = wire.KEEPALIVE_MS  # HTTP/2 ping interval on the peer channels


@dataclass(slots=True)
class PeerStats:
    """Counters of one peer's outbound stream, for metrics and tests."""

    sent: int = 0  # messages written to a stream
    bytes_sent: int = 0  # their approximate encoded size (codec.message_size)
    frames: int = 0  # MessageBatch frames written
    dropped: int = 0  # messages lost: queue overflow or the frame a broken stream took
    connects: int = 0  # streams opened and accepted by the peer
    failures: int = 0  # streams that broke or could not be opened


class _StreamRefused(Exception):
    """The peer ended the Send call (refused it, or is shutting down)."""


class _Peer:
    """Queue, channel and writer task of one peer. Owned by PeerTransport."""

    def __init__(self, owner: PeerTransport, peer_id: int, address: str) -> None:
        self.owner = owner
        self.peer_id = peer_id  # the node this queue feeds
        self.address = address  # host:port of its gRPC server
        self.queue: deque[tuple[Message, int]] = deque()  # (message, message_size) FIFO
        self.queued_bytes = 0  # Invariant: sum of the sizes in queue
        self.frame_bytes = 0  # size of the frame last taken by take_frame
        self.stats = PeerStats()
        self.wakeup = asyncio.Event()  # set when the queue gains messages or a call ends
        self.metadata = wire.call_metadata(owner.cluster_id, owner.node_id, peer_id)
        self.channel = grpc.aio.insecure_channel(
            address, options=wire.channel_options(owner.config.keepalive_ms)
        )
        self.stub = raft_pb2_grpc.RaftStub(self.channel)
        self.snapshot_task: asyncio.Task[bool] | None = None  # the one snapshot in flight
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"raft-peer-{peer_id}")

    # ------------------------------------------------------------------ queue
    def enqueue(self, msg: Message) -> None:
        size = codec.message_size(msg)
        q = self.queue
        q.append((msg, size))
        self.queued_bytes += size
        cfg = self.owner.config
        while len(q) > 1 and (
            len(q) > cfg.max_queue_msgs or self.queued_bytes > cfg.max_queue_bytes
        ):
            _, old = q.popleft()
            self.queued_bytes -= old
            self.stats.dropped += 1
        self.wakeup.set()

    def take_frame(self) -> tuple[Any, int]:
        """Pop up to one frame's worth of queued messages, encoded as a MessageBatch."""
        cfg = self.owner.config
        q = self.queue
        batch = raft_pb2.MessageBatch()
        add = batch.messages.add
        n = 0
        nbytes = 0
        while q and n < cfg.max_batch_msgs and (n == 0 or nbytes + q[0][1] <= cfg.max_batch_bytes):
            msg, size = q.popleft()
            nbytes += size
            n += 1
            codec.encode_into(msg, add())
        self.queued_bytes -= nbytes
        self.frame_bytes = nbytes
        return batch, n

    # ------------------------------------------------------------------ writer
    async def _run(self) -> None:
        cfg = self.owner.config
        backoff = cfg.backoff_min
        while True:
            while not self.queue:  # open streams only when there is something to say
                self.wakeup.clear()
                await self.wakeup.wait()
            call = self.stub.Send(metadata=self.metadata)
            inflight = 0
            try:
                async with asyncio.timeout(cfg.handshake_timeout):
                    # The receiver answers an accepted stream with headers naming itself;
                    # a refused one ends with trailers only (empty initial metadata).
                    headers = dict(await call.initial_metadata() or ())
                    if headers.get(wire.FROM_KEY) != str(self.peer_id):
                        raise _StreamRefused(await self._describe_end(call))
                self.stats.connects += 1
                backoff = cfg.backoff_min
                call.add_done_callback(lambda _: self.wakeup.set())
                while True:
                    if call.done():
                        raise _StreamRefused(await self._describe_end(call))
                    if not self.queue:
                        self.wakeup.clear()
                        await self.wakeup.wait()
                        continue
                    batch, inflight = self.take_frame()
                    async with asyncio.timeout(cfg.write_timeout):
                        await call.write(batch)
                    self.stats.sent += inflight
                    self.stats.bytes_sent += self.frame_bytes
                    self.stats.frames += 1
                    inflight = 0
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception as exc:  # any failure: drop the stream, retry
                if not isinstance(exc, (*_STREAM_ERRORS, _StreamRefused)):
                    log.exception(
                        "peer writer failed", node_id=self.owner.node_id, peer=self.peer_id
                    )
                call.cancel()
                self.stats.failures += 1
                self.stats.dropped += inflight
                log.info(
                    "peer stream broken",
                    node_id=self.owner.node_id,
                    peer=self.peer_id,
                    address=self.address,
                    error=_brief(exc),
                    retry_in=round(backoff, 3),
                )
                self.owner._report_unreachable(self.peer_id)
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, cfg.backoff_max)

    @staticmethod
    async def _describe_end(call: Any) -> str:
        code = await call.code()
        details = await call.details()
        return f"peer ended the stream: {code.name}: {details}"

    async def close(self) -> None:
        self.task.cancel()
        if self.snapshot_task is not None:
            self.snapshot_task.cancel()
        tasks = [t for t in (self.task, self.snapshot_task) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.channel.close()


def _brief(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


class PeerTransport:
    """Outbound Raft messages of node ``node_id`` to the peers in ``peers`` (id -> address).

    Construct it inside the running event loop; every method must be called from that
    loop. ``on_unreachable(peer)`` is called each time a peer's stream breaks or cannot be
    opened; ``on_snapshot_status(peer, ok)`` when a snapshot transfer ends. Neither may
    block. Messages to unknown peers (and to ``node_id`` itself) are dropped and counted
    in ``unknown_dropped``.
    """

    def __init__(
        self,
        node_id: int,
        peers: Mapping[int, str],
        *,
        cluster_id: str,
        on_unreachable: Callable[[int], None] | None = None,
        on_snapshot_status: Callable[[int, bool], None] | None = None,
        config: TransportConfig | None = None,
    ) -> None:
        self.node_id = node_id  # the sender; every call carries it
        self.cluster_id = cluster_id  # every call carries it; peers refuse a mismatch
        self.config = config or TransportConfig()
        self._on_unreachable = on_unreachable
        self._on_snapshot_status = on_snapshot_status
        self._peers: dict[int, _Peer] = {}  # Invariant: no entry for node_id itself
        self._closing: set[asyncio.Task[None]] = set()  # peers being shut down
        self._snapshot_tasks: set[asyncio.Task[bool]] = set()  # transfers in flight
        self._closed = False
        self.unknown_dropped = 0  # messages addressed to no known peer
        self.update_peers(peers)

    # ------------------------------------------------------------------ membership
    @property
    def peers(self) -> dict[int, str]:
        """The current address book (without this node)."""
        return {pid: p.address for pid, p in self._peers.items()}

    def update_peers(self, peers: Mapping[int, str]) -> None:
        """Make the address book equal ``peers``: start streams to new peers, stop those of
        removed ones (their queued messages are discarded), restart peers whose address
        changed. The entry for this node, if present, is ignored."""
        if self._closed:
            raise RuntimeError("PeerTransport is closed")
        wanted = {pid: addr for pid, addr in peers.items() if pid != self.node_id}
        for pid, p in list(self._peers.items()):
            if wanted.get(pid) != p.address:
                del self._peers[pid]
                self._retire(p)
        for pid, addr in wanted.items():
            if pid not in self._peers:
                self._peers[pid] = _Peer(self, pid, addr)

    def _retire(self, p: _Peer) -> None:
        task = asyncio.get_running_loop().create_task(p.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ sending
    def send(self, msgs: Sequence[Message]) -> None:
        """Queue ``msgs`` for their destinations (``msg.dst``). Never blocks, never raises
        for a message the codec can encode; encoding happens in the writer tasks."""
        peers = self._peers
        for m in msgs:
            p = peers.get(m.dst)
            if p is None:
                self.unknown_dropped += 1
                continue
            p.enqueue(m)

    def send_snapshot(self, msg: InstallSnapshot, path: Path) -> asyncio.Task[bool]:
        """Stream snapshot file ``path`` with header ``msg`` to ``msg.dst``.

        Returns the task doing it (result: True once the peer acknowledged a verified
        file). At most one transfer per peer runs at a time: while one is in flight, the
        same task is returned. ``on_snapshot_status(peer, ok)`` is called when it ends.
        """
        p = self._peers.get(msg.dst)
        if p is not None and p.snapshot_task is not None and not p.snapshot_task.done():
            return p.snapshot_task
        task = asyncio.get_running_loop().create_task(
            self._send_snapshot(p, msg, path), name=f"raft-snapshot-{msg.dst}"
        )
        if p is not None:
            p.snapshot_task = task
        self._snapshot_tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._snapshot_tasks.discard)
        return task

    async def _send_snapshot(self, p: _Peer | None, msg: InstallSnapshot, path: Path) -> bool:
        ok = False
        try:
            if p is None:
                log.warning("snapshot for unknown peer dropped", node_id=self.node_id, peer=msg.dst)
                return False
            ok = await self._stream_snapshot(p, msg, path)
            return ok
        finally:
            if self._on_snapshot_status is not None:
                self._on_snapshot_status(msg.dst, ok)

    async def _stream_snapshot(self, p: _Peer, msg: InstallSnapshot, path: Path) -> bool:
        cfg = self.config
        call = p.stub.InstallSnapshot(metadata=p.metadata)
        try:
            async for chunk in snapshot.snapshot_chunks(msg, path, cfg.snapshot_chunk_bytes):
                async with asyncio.timeout(cfg.write_timeout):
                    await call.write(chunk)
            await call.done_writing()
            async with asyncio.timeout(cfg.snapshot_ack_timeout):
                ack = await call
        except asyncio.CancelledError:
            call.cancel()
            raise
        except (*_STREAM_ERRORS, SnapshotError) as exc:
            call.cancel()
            log.warning(
                "snapshot transfer failed",
                node_id=self.node_id,
                peer=p.peer_id,
                index=msg.meta.index,
                error=_brief(exc),
            )
            return False
        log.info(
            "snapshot sent",
            node_id=self.node_id,
            peer=p.peer_id,
            index=msg.meta.index,
            bytes=ack.received_bytes,
        )
        return True

    # ------------------------------------------------------------------ status
    def _report_unreachable(self, peer_id: int) -> None:
        if self._on_unreachable is not None:
            self._on_unreachable(peer_id)

    def stats(self) -> dict[int, PeerStats]:
        """Live counters per peer (the objects keep updating)."""
        return {pid: p.stats for pid, p in self._peers.items()}

    def queued(self, peer_id: int) -> int:
        """Messages waiting for ``peer_id`` (0 for an unknown peer)."""
        p = self._peers.get(peer_id)
        return len(p.queue) if p is not None else 0

    async def close(self) -> None:
        """Stop every stream and close the channels. Queued messages are discarded."""
        if self._closed:
            return
        self._closed = True
        peers = list(self._peers.values())
        self._peers.clear()
        for task in self._snapshot_tasks:
            task.cancel()
        await asyncio.gather(
            *(p.close() for p in peers),
            *self._closing,
            *self._snapshot_tasks,
            return_exceptions=True,
        )
