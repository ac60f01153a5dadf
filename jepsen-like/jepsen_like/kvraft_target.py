"""A real kvraft cluster as a campaign target: ``kvraft serve`` processes, real faults.

Per run, in ``<run dir>/nodes/``: node N's data dir ``nN/`` and log ``nN.log``. Nodes are
started with explicit flags (``--id --listen --peers --data-dir``), because under the
proxy network every node has its own peers list. The network is chosen per campaign:

- ``netns``: node N in namespace ``jl-T-nN`` at 10.77.K.(10+N):7100 (needs root, ip, nft);
- ``proxy``: node N on a free 127.0.0.1 port; peers through per-link proxy ports;
- ``auto``: netns when available, else proxy (the reason is printed and recorded).

The harness's clients (one ``kvraft.Client`` per worker) reach every node directly.
``spares`` extra nodes get a network presence but start only when the ``member`` nemesis
adds them (empty, ``--join``). In proxy mode, a node added by a membership change is
dialled at its own address by everyone (the change carries one address), so links to it
cannot be cut.

Node N (a machine: network presence, process, data dir) serves under a *member id*: N at
first. kvraft never reuses a removed member id (a node back under its old id with an
empty data dir would replay old memberships and could elect itself alone), so a node
added again after its removal gets a new id (``add_member``) and is started fresh under
it. The nemeses speak of nodes; ``leader``, ``members`` and the admin calls translate.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .campaign import Target
from .client import KVClient
from .kvraft_client import KvraftClient
from .nemesis import netns
from .nemesis.base import Network
from .nemesis.processes import NodeCommand, SubprocessCluster
from .nemesis.proxy import ProxyNetwork, free_ports

NETNS_PORT = 7100


def choose_network(kind: str) -> tuple[str, str]:
    """("netns" | "proxy", why). Raises ValueError if netns is demanded but unusable."""
    if kind == "proxy":
        return "proxy", "requested"
    ok, why = netns.availability(install=True)
    if kind == "netns" and not ok:
        raise ValueError(f"--net netns is unavailable: {why}")
    if kind not in ("auto", "netns"):
        raise ValueError(f"unknown network {kind!r} (auto, netns, proxy)")
    return ("netns", why) if ok else ("proxy", f"namespaces unavailable: {why}")


async def _status(address: str) -> Any:
    from kvraft.cluster_launcher.probe import probe_status

    return await asyncio.to_thread(probe_status, address, 0.5)


class KvraftCluster:
    """Starts a fresh cluster per run; ``target`` is the campaign's view of it."""

    def __init__(self, *, nodes: int = 3, spares: int = 1, net: str = "auto",
                 tick_ms: int = 50, op_timeout: float = 2.0,
                 serve_args: Sequence[str] = ()) -> None:
        self.ids = list(range(1, nodes + 1))  # the initial voters
        self.spares = list(range(nodes + 1, nodes + spares + 1))  # provisioned, join later
        self.all_ids = self.ids + self.spares  # every node with a network presence
        self.net_kind, self.net_why = choose_network(net)  # mechanism and why it was chosen
        self.tick_ms = tick_ms  # raft tick of every node
        self.op_timeout = op_timeout  # per-operation deadline of the harness
        self.serve_args = list(serve_args)  # extra `kvraft serve` flags
        self.network: Network | None = None  # set up per run
        self.procs: SubprocessCluster | None = None  # per run
        self.member_ids: dict[int, int] = {}  # per run: node -> the member id it serves under
        self.used_ids: set[int] = set()  # per run: member ids ever given; never given again
        self.target = Target(name=f"kvraft-{nodes}", factory=self.client, cluster=self,
                             start=self.start_run, stop=self.stop_run, settle=self.settle,
                             info={"network": self.net_kind, "network_why": self.net_why})

    # ------------------------------------------------------------------ ProcessControl
    def node_ids(self) -> list[int]:
        return list(self.ids)

    def _procs(self) -> SubprocessCluster:
        if self.procs is None:
            raise RuntimeError("no run in progress")
        return self.procs

    async def leader(self) -> int | None:
        if self.network is None:
            return None
        running = [n for n in self.all_ids if self.procs is None or self.procs.is_running(n)]
        statuses = await asyncio.gather(*(_status(self.network.client_address(n))
                                          for n in running))
        leaders = [s for s in statuses if s is not None and s.is_leader]
        return self.node_of(max(leaders, key=lambda s: s.term).node_id) if leaders else None

    async def kill(self, node: int) -> None:
        await self._procs().kill(node)

    async def start(self, node: int) -> None:
        await self._procs().start(node)

    async def pause(self, node: int) -> None:
        await self._procs().pause(node)

    async def resume(self, node: int) -> None:
        await self._procs().resume(node)

    def is_running(self, node: int) -> bool:
        return self._procs().is_running(node)

    def data_dir(self, node: int) -> Path | None:
        return self._procs().data_dir(node)

    # ------------------------------------------------------------------ MembershipControl
    def spare_ids(self) -> list[int]:
        return list(self.spares)

    def node_of(self, member_id: int) -> int:
        """The node serving under ``member_id`` (the id itself if none does)."""
        return next((n for n, m in self.member_ids.items() if m == member_id), member_id)

    async def _admin(self, call: str, *args: Any, **kw: Any) -> Any:
        from kvraft.client import Client

        async with Client(self.endpoints(), timeout=5.0) as client:
            return await getattr(client, call)(*args, **kw)

    async def members(self) -> dict[int, bool]:
        return {self.node_of(m.id): m.learner for m in await self._admin("members")}

    async def add_member(self, node: int, *, learner: bool) -> int:
        """Add ``node`` under a member id never used before in this run (its own number
        the first time); returns that id. Start it with ``start_fresh``."""
        assert self.network is not None
        member = self.member_ids[node]
        if member in self.used_ids:
            member = max(self.used_ids | set(self.all_ids)) + 1
            self.member_ids[node] = member
        self.used_ids.add(member)
        await self._admin("add_member", member, self.network.listen_address(node),
                          learner=learner)
        return member

    async def promote(self, node: int) -> None:
        await self._admin("promote_member", self.member_ids[node])

    async def remove_member(self, node: int) -> None:
        await self._admin("remove_member", self.member_ids[node])

    async def start_fresh(self, node: int) -> None:
        """Kill ``node``, wipe its data dir, start it with ``--join`` under its current
        member id, knowing every node's address under its current id."""
        procs = self._procs()
        await procs.kill(node)
        data_dir = procs.data_dir(node)
        if data_dir is not None:
            await asyncio.to_thread(shutil.rmtree, data_dir, True)
        argv = procs.commands[node].argv
        argv[argv.index("--id") + 1] = str(self.member_ids[node])
        argv[argv.index("--peers") + 1] = self._peers(node, self.all_ids)
        if "--join" not in argv:
            argv.append("--join")
        await procs.start(node)

    def _peers(self, node: int, nodes: Sequence[int]) -> str:
        """The --peers value for ``node``: each of ``nodes`` under its member id, at the
        address ``node`` dials it."""
        assert self.network is not None
        addresses = self.network.peer_addresses(node)
        return ",".join(f"{self.member_ids[p]}={addresses[p]}" for p in nodes)

    # ------------------------------------------------------------------ per run
    def endpoints(self) -> list[str]:
        assert self.network is not None
        return [self.network.client_address(n) for n in self.all_ids]

    async def client(self, worker: int) -> KVClient:
        return KvraftClient(self.endpoints(), timeout=self.op_timeout * 0.8)

    async def start_run(self, run_dir: Path) -> None:
        network: Network
        if self.net_kind == "netns":
            network = netns.NetnsNetwork({n: NETNS_PORT for n in self.all_ids})
        else:
            network = ProxyNetwork(dict(zip(self.all_ids, free_ports(len(self.all_ids)),
                                            strict=True)))
        await network.setup()
        self.network = self.target.network = network
        self.member_ids = {n: n for n in self.all_ids}
        self.used_ids = set(self.ids)
        nodes_dir = run_dir / "nodes"
        commands = []
        for n in self.all_ids:
            peers = self._peers(n, [*self.ids, n] if n in self.spares else self.ids)
            argv = [sys.executable, "-m", "kvraft.cli.main", "serve", "--id", str(n),
                    "--listen", network.listen_address(n), "--peers", peers,
                    "--data-dir", str(nodes_dir / f"n{n}"), "--cluster-id", "jepsen-like",
                    "--tick-ms", str(self.tick_ms), "--log-format", "json", *self.serve_args]
            commands.append(NodeCommand(n, argv, nodes_dir / f"n{n}.log",
                                        data_dir=nodes_dir / f"n{n}"))
        self.procs = SubprocessCluster(commands, network=network, leader_probe=self.leader)
        for n in self.ids:  # spares start only when the member nemesis adds them
            await self.procs.start(n)
        await self.wait_for_leader(30.0)

    async def wait_for_leader(self, timeout: float, *, all_alive: bool = True) -> int:
        """Poll until a node says it leads; with ``all_alive``, fail fast if a node died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = await self.leader()
            if leader is not None:
                return leader
            dead = [n for n in self.ids if not self._procs().is_running(n)]
            if dead and all_alive:
                raise RuntimeError(f"nodes {dead} exited; see their logs in the run folder")
            await asyncio.sleep(0.2)
        raise RuntimeError(f"no leader within {timeout:g}s; see the node logs")

    async def settle(self) -> None:
        try:
            await self.wait_for_leader(30.0, all_alive=False)
        except RuntimeError:
            pass  # the final reads will record what the cluster can still do

    async def stop_run(self) -> None:
        if self.procs is not None:
            await self.procs.stop_all()
            self.procs = None
        if self.network is not None:
            await self.network.close()
            self.network = self.target.network = None
