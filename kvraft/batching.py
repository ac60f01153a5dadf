"""Packing of the ``KV.Batch`` stream, shared by the client (kvraft/client/mux.py) and
the server (kvraft/server/kv_service.py); see the Batch comment in kv.proto.

One gRPC stream message costs ~100 us of CPU per side in Python whatever it carries, so
under load a side packs the items that queued up while it was writing the previous
message into the next one (``BatchRequest.more`` / ``BatchResponse.more``), but only
for a peer that announced it reads them with the metadata ``PACKING_KEY: "1"``.
"""

from __future__ import annotations

import asyncio
from typing import Any

PACKING_KEY = "x-kvraft-batch-packing"
"""Metadata by which each side of a Batch stream says it reads packed messages."""

PACKING = ((PACKING_KEY, "1"),)
"""The metadata to send (the client on its call, the server as initial metadata)."""

MAX_PACK = 256  # items per stream message (the first one included)
LINGER_S = 0.0005
"""How long a client request that would go alone waits for company while other requests
are in flight on its stream (like Nagle's algorithm): their answers, due any moment,
wake the tasks that make the next requests. Without it, fast answers (STALE reads)
settle into ~1 request per message at full per-message cost. Never applies to a lone
request (1 in flight), so it adds no latency there."""
MAX_PACK_BYTES = 1 << 20  # stop adding items once a message is this large


def announces_packing(metadata: Any) -> bool:
    """True if ``metadata`` (a grpc metadata collection, or None) carries PACKING."""
    return PACKING[0] in tuple(metadata or ())


def pack(first: Any, queue: asyncio.Queue[Any], end: object) -> bool:
    """Move the items already waiting in ``queue`` into ``first.more``, in order, bounded
    by MAX_PACK and MAX_PACK_BYTES. Returns True if it met (and consumed) the end
    marker ``end``; it never waits."""
    size = first.ByteSize()
    more = first.more
    while len(more) < MAX_PACK - 1 and size < MAX_PACK_BYTES and not queue.empty():
        nxt = queue.get_nowait()
        if nxt is end:
            return True
        more.append(nxt)
        size += nxt.ByteSize()
    return False
