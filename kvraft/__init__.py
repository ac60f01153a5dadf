"""kvraft: a Raft-replicated key-value store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kvraft.client import Client, SyncClient

__all__ = ["Client", "SyncClient", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import kvraft.core` must not pull in grpc through this package's __init__.
    if name in ("Client", "SyncClient"):
        import kvraft.client

        return getattr(kvraft.client, name)
    raise AttributeError(f"module 'kvraft' has no attribute {name!r}")
