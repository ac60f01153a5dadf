"""The TCP-proxy network: partitions without privileges, on 127.0.0.1 only.

Every node listens on its own loopback port. For every ordered pair (a, b) of nodes a
proxy port carries the connections node a opens to node b, and node a's peers list
names that port for b (``peer_addresses``). The proxy process (``proxy_main.py``) can
stall each direction of each link, so one-way cuts are real too. The harness's clients
connect to the nodes directly and are never cut.

Limits, compared with namespaces: only traffic between nodes that goes through the peers
list is cut (a leader hint carrying a peer's proxied address sends a client through that
link); stalled bytes are delivered on heal instead of being lost, as TCP retransmission
would after a short partition; a node added later by a membership change is reached at
one address by all (no per-link proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import Cut

HOST = "127.0.0.1"
PROXY_MAIN = Path(__file__).with_name("proxy_main.py")


class ProxyError(RuntimeError):
    """The proxy process failed to start or to answer."""


def free_ports(n: int) -> list[int]:
    """n distinct ports free on 127.0.0.1 right now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ProxyNetwork:
    """Controls one proxy process for a fixed set of nodes (see module docstring)."""

    kind = "proxy"

    def __init__(self, ports: dict[int, int]) -> None:
        self.ports = dict(ports)  # node id -> its real listening port on 127.0.0.1
        self.link_ports: dict[tuple[int, int], int] = {}  # (a, b) -> proxy port for a->b
        self._proc: asyncio.subprocess.Process | None = None  # the proxy, once started
        self._cut: Cut = frozenset()  # links currently stalled

    def listen_address(self, node: int) -> str:
        return f"{HOST}:{self.ports[node]}"

    def peer_addresses(self, node: int) -> dict[int, str]:
        if not self.link_ports:
            raise ProxyError("proxy not started: call setup() first")
        return {n: self.listen_address(n) if n == node else f"{HOST}:{self.link_ports[(node, n)]}"
                for n in self.ports}

    def client_address(self, node: int) -> str:
        return self.listen_address(node)

    def wrap(self, node: int, argv: Sequence[str]) -> list[str]:
        return list(argv)

    @property
    def current(self) -> Cut:
        return self._cut

    async def setup(self) -> None:
        links = [{"src": a, "dst": b, "target": self.listen_address(b)}
                 for a in self.ports for b in self.ports if a != b]
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, str(PROXY_MAIN), json.dumps({"links": links}),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        ports: dict[str, int] = (await self._reply())["ports"]
        self.link_ports = {(int(k.split("-")[0]), int(k.split("-")[1])): int(v)
                           for k, v in ports.items()}

    async def _reply(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), 10.0)
        except TimeoutError as exc:
            raise ProxyError("the proxy did not answer within 10 s") from exc
        if not line:
            raise ProxyError(f"the proxy exited (code {await self._proc.wait()})")
        return dict(json.loads(line))

    async def cut(self, links: Cut) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise ProxyError("proxy not started: call setup() first")
        self._proc.stdin.write((json.dumps({"cut": sorted(links)}) + "\n").encode())
        await self._proc.stdin.drain()
        reply = await self._reply()
        if not reply.get("ok"):
            raise ProxyError(f"the proxy refused the cut: {reply}")
        self._cut = frozenset(links)

    async def heal(self) -> None:
        await self.cut(frozenset())

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
