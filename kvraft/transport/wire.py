"""Conventions shared by both ends of a peer connection: call metadata and gRPC options.

Every Raft call (Send, InstallSnapshot) carries the sender's cluster id, its node id and
the node id it means to reach; the receiver refuses a call that does not match it, so a
node that kept an old address of a replaced peer, or belongs to another cluster, is
turned away before any message reaches Raft.
"""

from __future__ import annotations

from collections.abc import Sequence

CLUSTER_ID_KEY = "x-kvraft-cluster-id"
FROM_KEY = "x-kvraft-from"
TO_KEY = "x-kvraft-to"

MAX_MESSAGE_BYTES = 64 << 20
"""Largest gRPC message either side accepts. A frame holds at most ``max_batch_bytes``
(default 4 MiB) plus one message, and a single AppendEntries holds at least one entry of
up to the value limit, so 64 MiB leaves a wide margin."""

CHANNEL_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Find a dead or frozen peer in ~5 s even when no write is pending.
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect soon after a peer restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
"""Options of the client channel a node opens to each peer."""

SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Accept the peers' keepalive pings (the default would answer them with GOAWAY).
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
)
"""Options the node's gRPC server needs for the peer streams (pass to grpc.aio.server)."""


def call_metadata(cluster_id: str, src: int, dst: int) -> tuple[tuple[str, str], ...]:
    """Metadata of a Raft call from node ``src`` to node ``dst`` of ``cluster_id``."""
    return ((CLUSTER_ID_KEY, cluster_id), (FROM_KEY, str(src)), (TO_KEY, str(dst)))


def check_metadata(
    metadata: Sequence[tuple[str, str | bytes]] | None, cluster_id: str, node_id: int
) -> int:
    """Validate an incoming call's metadata for this node; return the sender's node id.

    Raises ValueError, with a message fit for the peer, when a key is missing or does not
    match (another cluster, or a call meant for another node id).
    """
    md = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
    their_cluster = md.get(CLUSTER_ID_KEY)
    if their_cluster != cluster_id:
        raise ValueError(
            f"cluster id mismatch: this node belongs to {cluster_id!r}, the caller to "
            f"{their_cluster!r} ({CLUSTER_ID_KEY})"
        )
    try:
        src = int(md[FROM_KEY])
        dst = int(md[TO_KEY])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"missing or malformed {FROM_KEY}/{TO_KEY} metadata: {exc}") from exc
    if dst != node_id:
        raise ValueError(
            f"misdirected: the caller meant node {dst}, this is node {node_id}; "
            "its address book is out of date"
        )
    if src <= 0 or src == node_id:
        raise ValueError(f"bad sender node id {src} (this is node {node_id})")
    return src
