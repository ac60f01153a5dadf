"""The Raft algorithm as a pure, deterministic state machine (sans-I/O).

Stdlib only: no asyncio, grpc, lmdb, structlog, time, os or threading; randomness comes
from an injected ``random.Random``. See ``types.py`` for the data it exchanges and
``raw_node.py`` for the Ready protocol.
"""

from kvraft.core.config import Config
from kvraft.core.raw_node import RawNode

__all__ = ["Config", "RawNode"]
