"""The interfaces between nemeses and what they act on.

``ProcessControl`` is implemented by the cluster layer (``processes.SubprocessCluster``
here; ``fakes.FakeCluster`` in tests). ``Network`` is implemented by ``netns.NetnsNetwork``
and ``proxy.ProxyNetwork``. A *cut* is a set of directed links ``(src, dst)``: packets
(or bytes) from node ``src`` to node ``dst`` are dropped; a symmetric partition lists both
directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

Link = tuple[int, int]  # (src node id, dst node id)
Cut = frozenset[Link]


class ProcessControl(Protocol):
    """Start, kill and pause the nodes of one cluster. All methods are idempotent for a
    node already in the requested state; node ids are those of ``node_ids()``."""

    def node_ids(self) -> list[int]:
        ...

    async def leader(self) -> int | None:
        """The current leader as the nodes report it, or None if unknown/none."""
        ...

    async def kill(self, node: int) -> None:
        """SIGKILL the node's process and wait until it has exited."""
        ...

    async def start(self, node: int) -> None:
        """(Re)start the node with its data dir as it is; returns once spawned."""
        ...

    async def pause(self, node: int) -> None:
        """SIGSTOP the node's process."""
        ...

    async def resume(self, node: int) -> None:
        """SIGCONT the node's process."""
        ...

    def is_running(self, node: int) -> bool:
        """True if the node's process exists (paused counts as running)."""
        ...

    def data_dir(self, node: int) -> Path | None:
        """The node's data directory (None if it has none, e.g. a fake)."""
        ...


class Network(Protocol):
    """A mechanism that can cut real traffic between the nodes' processes. It is made for
    a fixed set of nodes, each with its own port, before the nodes start."""

    kind: str  # "netns" or "proxy"

    def listen_address(self, node: int) -> str:
        """host:port the node binds."""
        ...

    def peer_addresses(self, node: int) -> dict[int, str]:
        """How ``node`` reaches every node (itself included): its peers list."""
        ...

    def client_address(self, node: int) -> str:
        """host:port the harness's clients use for ``node`` (never cut)."""
        ...

    def wrap(self, node: int, argv: Sequence[str]) -> list[str]:
        """The command line that runs argv attached to the node's network."""
        ...

    async def setup(self) -> None:
        """Create the mechanism; call before starting nodes (their addresses need it)."""
        ...

    async def cut(self, links: Cut) -> None:
        """Drop exactly these directed links from now on (replacing the previous cut)."""
        ...

    async def heal(self) -> None:
        """Drop nothing."""
        ...

    async def close(self) -> None:
        """Remove everything set up; idempotent."""
        ...
