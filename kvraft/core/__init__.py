"""The Raft algorithm as a pure, deterministic state machine (sans-I/O).

Stdlib only: no asyncio, grpc, lmdb, structlog, time, os or threading; randomness comes
from an injected ``random.Random``. See ``types.py`` for the data it exchanges.
"""
