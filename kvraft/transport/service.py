"""The receiving end of the peer transport: the gRPC ``kvraft.v1.Raft`` servicer.

``Send`` accepts one long-lived stream per peer, decodes each MessageBatch and hands the
list of core messages to ``on_messages`` (called on the event loop, in stream order; it
must not block: the runtime puts them in its inbox). ``InstallSnapshot`` receives a file
into ``snapshot_dir`` (see :mod:`kvraft.transport.snapshot`) and then calls
``on_snapshot(message, path)``; the peer gets its ack only after that returns (DATA_LOSS if
it raises SnapshotError: the receiver refused the file).

A peer's mistakes never reach Raft: calls with wrong metadata are refused with
FAILED_PRECONDITION, and a message that does not decode, or whose src/dst does not match
the stream, is logged and dropped while the rest of the batch goes through.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import structlog

from kvraft._pb.kvraft.v1 import raft_pb2, raft_pb2_grpc
from kvraft.core.types import InstallSnapshot, Message
from kvraft.errors import SnapshotError
from kvraft.transport import codec, snapshot, wire

log = structlog.get_logger(__name__)

OnMessages = Callable[[list[Message]], None]
OnSnapshot = Callable[[InstallSnapshot, Path], Awaitable[None] | None]

_LOGGED_DROPS = 10
"""Per stream, log the first this many dropped messages one by one, then only counts."""


class RaftService(raft_pb2_grpc.RaftServicer):  # type: ignore[misc]
    """Servicer of ``kvraft.v1.Raft`` for node ``node_id`` of cluster ``cluster_id``.

    Register it with :meth:`add_to_server`. Stats (``received``, ``dropped``,
    ``snapshots``, ``snapshot_failures``) are plain counters for metrics.
    """

    def __init__(
        self,
        *,
        node_id: int,
        cluster_id: str,
        on_messages: OnMessages,
        on_snapshot: OnSnapshot,
        snapshot_dir: Path,
        max_snapshot_bytes: int | None = None,
    ) -> None:
        self.node_id = node_id  # this node; calls addressed to another id are refused
        self.cluster_id = cluster_id  # calls from another cluster are refused
        self._on_messages = on_messages
        self._on_snapshot = on_snapshot
        self._snapshot_dir = snapshot_dir  # where received snapshot files are written
        self._max_snapshot_bytes = max_snapshot_bytes
        self.received = 0  # messages handed to on_messages
        self.received_from: dict[int, int] = {}  # the same, by sending peer
        self.dropped = 0  # messages dropped as undecodable or misaddressed
        self.snapshots = 0  # snapshots received, verified and handed over
        self.snapshot_failures = 0  # snapshot streams rejected or broken

    def add_to_server(self, server: Any) -> None:
        """Register this servicer with a ``grpc.aio.Server``."""
        raft_pb2_grpc.add_RaftServicer_to_server(self, server)

    async def _accept(self, context: Any, call: str) -> int:
        """Check the call's metadata; abort it if it is not for us. Returns the peer id."""
        try:
            return wire.check_metadata(context.invocation_metadata(), self.cluster_id, self.node_id)
        except ValueError as exc:
            log.warning("peer call refused", call=call, node_id=self.node_id, reason=str(exc))
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise AssertionError("unreachable: abort raises") from exc

    async def Send(  # gRPC method name
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> Any:
        peer = await self._accept(context, "Send")
        # Answer the handshake at once: the sender waits for these headers to know the
        # stream is accepted before it counts the peer as connected.
        await context.send_initial_metadata(((wire.FROM_KEY, str(self.node_id)),))
        me = self.node_id
        drops = 0
        count = 0

        def dropped(what: str, detail: str) -> None:
            nonlocal drops
            drops += 1
            self.dropped += 1
            if drops <= _LOGGED_DROPS:
                log.warning("peer message dropped", peer=peer, node_id=me, why=what, detail=detail)

        def on_decode_error(pos: int, exc: codec.DecodeError) -> None:
            dropped("undecodable", f"message {pos} of its batch: {exc}")

        async for batch in request_iterator:
            msgs = codec.decode_batch(batch, on_decode_error)
            bad = [m for m in msgs if m.src != peer or m.dst != me]
            if bad:
                for m in bad:
                    dropped("misaddressed", f"{type(m).__name__} src={m.src} dst={m.dst}")
                msgs = [m for m in msgs if m.src == peer and m.dst == me]
            if msgs:
                count += len(msgs)
                self.received += len(msgs)
                self.received_from[peer] = self.received_from.get(peer, 0) + len(msgs)
                self._on_messages(msgs)
        if drops > _LOGGED_DROPS:
            log.warning("peer stream dropped messages", peer=peer, node_id=me, dropped=drops)
        return raft_pb2.SendAck(received=count)

    async def InstallSnapshot(  # gRPC method name
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> Any:
        peer = await self._accept(context, "InstallSnapshot")
        try:
            msg, path = await snapshot.receive_snapshot(
                request_iterator, self._snapshot_dir, max_size=self._max_snapshot_bytes
            )
            if msg.src != peer or msg.dst != self.node_id:
                path.unlink(missing_ok=True)
                raise SnapshotError(
                    f"snapshot header src={msg.src} dst={msg.dst} does not match the call "
                    f"from {peer} to {self.node_id}"
                )
            size = path.stat().st_size
            log.info(
                "snapshot received",
                peer=peer,
                node_id=self.node_id,
                index=msg.meta.index,
                term=msg.meta.term,
                bytes=size,
            )
            result = self._on_snapshot(msg, path)  # may refuse the file: SnapshotError
            if inspect.isawaitable(result):
                await result
        except SnapshotError as exc:
            self.snapshot_failures += 1
            log.warning("snapshot rejected", peer=peer, node_id=self.node_id, reason=str(exc))
            await context.abort(grpc.StatusCode.DATA_LOSS, str(exc))
            raise AssertionError("unreachable: abort raises") from exc
        self.snapshots += 1
        return raft_pb2.SnapshotAck(received_bytes=size)
