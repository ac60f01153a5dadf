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

KEEPALIVE_MS = 2000
"""Default interval of the peer channels' HTTP/2 pings: a dead or frozen peer is noticed
within about ``KEEPALIVE_MS + keepalive timeout`` even when no write is pending."""


def channel_options(keepalive_ms: int = KEEPALIVE_MS) -> list[tuple[str, int]]:
    """Options of the client channel a node opens to each peer."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", max(1000, keepalive_ms * 3 // 2)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnect soon after a peer restarts (gRPC's default backoff grows to 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


CHANNEL_OPTIONS: Sequence[tuple[str, int]] = tuple(channel_options())
"""The default peer channel options."""

SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Accept the peers' keepalive pings. Without these, a server that has sent no data
    # for a while (a Send stream only receives) answers the pings with GOAWAY
    # "too_many_pings" and every idle peer stream breaks after a few seconds.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
)
"""Options the node's gRPC server needs for the peer streams: pass them to
``grpc.aio.server`` (a later duplicate key overrides; keep the message limit at least
``max_batch_bytes`` plus the largest AppendEntries)."""


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
