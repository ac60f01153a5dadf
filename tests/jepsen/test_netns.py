"""Partitions in network namespaces cut real traffic between OS processes, and heal.

Three TCP echo / UDP receiver processes run in three namespaces; probes run inside the
namespaces too. Skipped (with the reason) where namespaces are unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from jepsen_like.nemesis import netns
from jepsen_like.nemesis.partitions import isolate, one_way
from jepsen_like.nemesis.processes import NodeCommand, SubprocessCluster

from .builders import wait_for

NETCHECK = str(Path(netns.__file__).with_name("netcheck.py"))
PORT = 7400
OK, WHY = netns.availability()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not OK, reason=WHY)]



class Lab:
    def __init__(self, net: netns.NetnsNetwork, cluster: SubprocessCluster, logs: Path):
        self.net, self.cluster, self.logs = net, cluster, logs

    def tcp(self, src: int | None, dst: int, timeout: float = 1.0) -> bool:
        """Echo round trip from node src's namespace (None: the harness) to node dst."""
        argv = [sys.executable, NETCHECK, "tcp", self.net.ip(dst), str(PORT), str(timeout)]
        if src is not None:
            argv = self.net.wrap(src, argv)
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0

    def udp(self, src: int, dst: int, message: str) -> None:
        argv = self.net.wrap(src, [sys.executable, NETCHECK, "udp", self.net.ip(dst),
                                   str(PORT), message])
        subprocess.run(argv, check=True, capture_output=True, timeout=30)

    def received(self, node: int) -> list[str]:
        path = self.logs / f"udp{node}.log"
        return path.read_text().split() if path.exists() else []

    async def delivered(self, src: int, dst: int, tag: str) -> bool:
        """Send a datagram src->dst, then a sentinel from the third node to dst over a
        link that is not cut; once the sentinel arrives, was the first one delivered?"""
        third = next(n for n in (1, 2, 3) if n not in (src, dst))
        self.udp(src, dst, f"{tag}-probe")
        self.udp(third, dst, f"{tag}-sentinel")
        await wait_for(lambda: f"{tag}-sentinel" in self.received(dst))
        return f"{tag}-probe" in self.received(dst)


@contextlib.asynccontextmanager
async def running_lab(tmp_path: Path) -> AsyncIterator[Lab]:
    net = netns.NetnsNetwork({1: PORT, 2: PORT, 3: PORT})
    await net.setup()
    commands = [NodeCommand(n, [sys.executable, NETCHECK, "serve", net.ip(n), str(PORT),
                                str(tmp_path / f"udp{n}.log")], tmp_path / f"node{n}.log")
                for n in (1, 2, 3)]
    cluster = SubprocessCluster(commands, network=net)
    try:
        await cluster.start_all()
        lab = Lab(net, cluster, tmp_path)
        await wait_for(lambda: all(lab.tcp(None, n) for n in (1, 2, 3)))
        yield lab
    finally:
        await cluster.stop_all()
        await net.close()
    assert not any(n.startswith(f"jl-{net.tag}-") for n in
                   subprocess.run(["ip", "netns", "list"], capture_output=True,
                                  text=True).stdout.split())


def in_lab(tmp_path: Path, body: Callable[[Lab], Awaitable[None]]) -> None:
    async def main() -> None:
        async with running_lab(tmp_path) as lab:
            await body(lab)

    asyncio.run(main())


def test_isolating_a_node_cuts_tcp_both_ways_and_heal_restores_it(tmp_path: Path) -> None:
    in_lab(tmp_path, isolating_a_node)


async def isolating_a_node(lab: Lab) -> None:
    assert lab.tcp(1, 2) and lab.tcp(2, 1) and lab.tcp(2, 3)
    await lab.net.cut(isolate([1, 2, 3], random.Random(0), leader=1))
    assert not lab.tcp(1, 2, timeout=0.5)
    assert not lab.tcp(3, 1, timeout=0.5)
    assert lab.tcp(2, 3), "the majority side still talks"
    assert lab.tcp(None, 1), "the harness's clients are never cut"
    await lab.net.heal()
    assert lab.tcp(1, 2) and lab.tcp(3, 1)


def test_one_way_cut_drops_one_direction_only(tmp_path: Path) -> None:
    in_lab(tmp_path, one_way_cut)


async def one_way_cut(lab: Lab) -> None:
    await lab.net.cut(one_way([1], [2]))
    assert not await lab.delivered(1, 2, "cut")
    assert await lab.delivered(2, 1, "open")
    # TCP needs both directions: neither side can connect while one direction drops
    assert not lab.tcp(1, 2, timeout=0.5)
    assert not lab.tcp(2, 1, timeout=0.5)
    await lab.net.heal()
    assert await lab.delivered(1, 2, "healed")
    assert lab.tcp(1, 2)


def test_kill_restart_and_pause_resume_real_processes(tmp_path: Path) -> None:
    in_lab(tmp_path, process_faults)


async def process_faults(lab: Lab) -> None:
    first_pid = lab.cluster.pid(3)
    await lab.cluster.kill(3)
    assert not lab.cluster.is_running(3)
    assert not lab.tcp(1, 3, timeout=0.5)
    await lab.cluster.start(3)
    assert lab.cluster.pid(3) != first_pid
    await wait_for(lambda: lab.tcp(1, 3))
    await lab.cluster.pause(3)
    assert lab.cluster.is_running(3)
    assert not lab.tcp(1, 3, timeout=0.5), "a stopped process does not answer"
    await lab.cluster.resume(3)
    assert lab.tcp(1, 3)
