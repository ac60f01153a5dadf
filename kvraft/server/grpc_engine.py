"""Which of gRPC's two socket layers a node runs on.

grpcio on Linux has two ways to move bytes between sockets and calls. By default its
EventEngine polls the sockets on threads of its own and hands each completed read to the
completion queue, whose poller thread then wakes the asyncio event loop: three threads
wake for every message a node receives. The older polling layer reads the socket on the
completion queue's poller thread itself, one wake-up fewer per message. A node's put at
one in flight crosses four such messages on its critical path (client -> leader ->
follower -> leader -> client), on a box where every hand-off between threads may wait
for a CPU; on the polling layer, interleaved runs measured the single put ~10% faster and
the servers' CPU per put ~8% lower (docs/performance.md).

gRPC reads its choice once, from ``GRPC_EXPERIMENTS``, when ``grpc`` is first imported,
so ``kvraft serve`` calls :func:`prefer_polling` before anything imports grpc. An
operator's own ``GRPC_EXPERIMENTS`` (even an empty one: gRPC's defaults) always wins.
Only the server process is changed: the client library never touches the process-wide
setting of an application that imports it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping

VARIABLE = "GRPC_EXPERIMENTS"
POLLING = "-event_engine_client,-event_engine_listener"
"""gRPC experiments turned off so that client channels and listeners use the polling
layer (both are experiment flags in the grpcio this project pins as its minimum)."""


def prefer_polling(
    environ: MutableMapping[str, str] = os.environ, modules: Mapping[str, object] = sys.modules,
) -> bool:
    """Select the polling socket layer for this process, unless the operator chose one
    or grpc is already imported (too late). True if it did."""
    if VARIABLE in environ or "grpc" in modules:
        return False
    environ[VARIABLE] = POLLING
    return True


def describe(environ: Mapping[str, str] = os.environ) -> str:
    """The socket layer this process's gRPC runs on, for the startup log."""
    value = environ.get(VARIABLE)
    if value is None:
        return "event_engine"
    if value == POLLING:
        return "polling"
    return f"{VARIABLE}={value!r}"
