"""kvraft.transport: how Raft messages cross the network.

- :mod:`~kvraft.transport.codec`: core message dataclasses <-> raft.proto messages.
- :class:`PeerTransport` (peer.py): outbound, one batching gRPC stream per peer.
- :class:`RaftService` (service.py): inbound, the ``kvraft.v1.Raft`` servicer.
- :mod:`~kvraft.transport.snapshot`: CRC-checked chunked snapshot files.
- :mod:`~kvraft.transport.wire`: call metadata and the gRPC options both ends need
  (pass ``SERVER_OPTIONS`` to the node's ``grpc.aio.server``).
"""

from __future__ import annotations

from kvraft.transport.peer import PeerStats, PeerTransport, TransportConfig
from kvraft.transport.service import RaftService
from kvraft.transport.wire import CHANNEL_OPTIONS, SERVER_OPTIONS

__all__ = [
    "CHANNEL_OPTIONS",
    "SERVER_OPTIONS",
    "PeerStats",
    "PeerTransport",
    "RaftService",
    "TransportConfig",
]
