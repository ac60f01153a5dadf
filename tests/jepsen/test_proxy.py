"""The TCP-proxy fallback stalls each direction of each link on its own, and heals."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from jepsen_like.nemesis.partitions import isolate, one_way
from jepsen_like.nemesis.proxy import ProxyNetwork, free_ports

from .builders import wait_for


class Node:
    """An echo server standing in for a node: records what it received."""

    def __init__(self) -> None:
        self.received = b""

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            self.received += data
            w.write(data)
            await w.drain()
        w.close()


async def connect(net: ProxyNetwork, src: int, dst: int) -> tuple[asyncio.StreamReader,
                                                                  asyncio.StreamWriter]:
    host, port = net.peer_addresses(src)[dst].rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


def with_proxy(body: Callable[[ProxyNetwork, dict[int, Node]], Awaitable[None]]) -> None:
    async def main() -> None:
        ports = dict(zip((1, 2, 3), free_ports(3), strict=True))
        nodes = {n: Node() for n in ports}
        servers = [await asyncio.start_server(nodes[n].handle, "127.0.0.1", ports[n])
                   for n in ports]
        net = ProxyNetwork(ports)
        await net.setup()
        try:
            await body(net, nodes)
        finally:
            await net.close()
            for s in servers:
                s.close()

    asyncio.run(main())


def test_peer_addresses_route_each_link_through_its_own_port() -> None:
    async def body(net: ProxyNetwork, nodes: dict[int, Node]) -> None:
        peers = net.peer_addresses(1)
        assert peers[1] == net.listen_address(1)
        assert len({peers[2], peers[3], net.peer_addresses(2)[3]}) == 3
        assert all(a.startswith("127.0.0.1:") for a in peers.values())

    with_proxy(body)


def test_isolation_stalls_traffic_and_heal_delivers_it() -> None:
    async def body(net: ProxyNetwork, nodes: dict[int, Node]) -> None:
        r12, w12 = await connect(net, 1, 2)
        w12.write(b"a")
        assert await r12.readexactly(1) == b"a"
        await net.cut(isolate([1, 2, 3], random.Random(0), 1))
        w12.write(b"b")
        r32, w32 = await connect(net, 3, 2)
        w32.write(b"sentinel")
        assert await r32.readexactly(8) == b"sentinel", "3<->2 is not cut"
        assert nodes[2].received == b"asentinel", "1->2 bytes are held"
        await net.heal()
        assert await r12.readexactly(1) == b"b"
        assert nodes[2].received.endswith(b"b")
        w12.close()
        w32.close()

    with_proxy(body)


def test_one_way_cut_lets_the_other_direction_through() -> None:
    async def body(net: ProxyNetwork, nodes: dict[int, Node]) -> None:
        r21, w21 = await connect(net, 2, 1)
        r12, w12 = await connect(net, 1, 2)
        await net.cut(one_way([1], [2]))  # bytes from node 1 to node 2 are stalled
        w21.write(b"x")
        await wait_for(lambda: nodes[1].received == b"x")  # 2 -> 1 flows
        w12.write(b"y")
        r32, w32 = await connect(net, 3, 2)
        w32.write(b"s")
        assert await r32.readexactly(1) == b"s"
        assert nodes[2].received == b"s", "1 -> 2 is stalled"
        await net.heal()
        assert await r21.readexactly(1) == b"x", "the echo 1 -> 2 arrives after heal"
        assert await r12.readexactly(1) == b"y"
        for w in (w21, w12, w32):
            w.close()

    with_proxy(body)
