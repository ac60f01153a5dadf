"""A ``ProcessControl`` over real OS processes: spawn, kill -9, restart, SIGSTOP/SIGCONT.

Each node is one command line (``NodeCommand``), optionally run inside the node's
network (``Network.wrap``: ``ip netns exec`` execs the command, so the PID we hold is the
node's own). stdout and stderr go to the node's log file, which restarts append to with a
marker line. Only processes this object spawned are ever signalled, by PID.

``leader`` asks an injected async probe (for kvraft: the cluster launcher's status call
or the client's); without one it answers None and "leader" faults pick a random node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .base import Network

LeaderProbe = Callable[[], Awaitable["int | None"]]


@dataclass(slots=True)
class NodeCommand:
    node: int
    argv: list[str]  # the node's command line, not yet wrapped for the network
    log: Path  # stdout+stderr, appended across restarts
    data_dir: Path | None = None  # what storage faults damage
    env: dict[str, str] = field(default_factory=dict)  # added to the harness's environment
    cwd: Path | None = None


class SubprocessCluster:
    """Runs and faults one process per node. Use ``async with`` or call ``stop_all``."""

    def __init__(self, commands: Sequence[NodeCommand], *, network: Network | None = None,
                 leader_probe: LeaderProbe | None = None) -> None:
        self.commands = {c.node: c for c in commands}  # node id -> how to run it
        self.network = network  # wraps commands; None = run in the harness's namespace
        self.leader_probe = leader_probe  # answers leader(); None = unknown
        self.procs: dict[int, asyncio.subprocess.Process] = {}  # live (or paused) nodes
        self.paused: set[int] = set()  # nodes currently SIGSTOPped
        self.starts: dict[int, int] = {}  # node -> how many times it was spawned

    def node_ids(self) -> list[int]:
        return sorted(self.commands)

    def pid(self, node: int) -> int | None:
        proc = self.procs.get(node)
        return proc.pid if proc is not None and proc.returncode is None else None

    def is_running(self, node: int) -> bool:
        proc = self.procs.get(node)
        return proc is not None and proc.returncode is None

    def data_dir(self, node: int) -> Path | None:
        return self.commands[node].data_dir

    async def leader(self) -> int | None:
        if self.leader_probe is None:
            return None
        try:
            return await self.leader_probe()
        except Exception:  # a probe failing during faults is expected: unknown leader
            return None

    async def start(self, node: int) -> None:
        if self.is_running(node):
            return
        cmd = self.commands[node]
        argv = self.network.wrap(node, cmd.argv) if self.network else list(cmd.argv)
        cmd.log.parent.mkdir(parents=True, exist_ok=True)
        self.starts[node] = self.starts.get(node, 0) + 1
        with cmd.log.open("ab") as log:
            log.write(f"=== jepsen-like: start #{self.starts[node]} of node {node} at "
                      f"{time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
            log.flush()
            self.procs[node] = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, **cmd.env}, cwd=cmd.cwd, start_new_session=True)
        self.paused.discard(node)

    async def kill(self, node: int) -> None:
        proc = self.procs.get(node)
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        self.paused.discard(node)

    async def pause(self, node: int) -> None:
        proc = self.procs.get(node)
        if proc is not None and proc.returncode is None and node not in self.paused:
            proc.send_signal(signal.SIGSTOP)
            self.paused.add(node)

    async def resume(self, node: int) -> None:
        proc = self.procs.get(node)
        if proc is not None and proc.returncode is None and node in self.paused:
            proc.send_signal(signal.SIGCONT)
        self.paused.discard(node)

    async def start_all(self) -> None:
        for node in self.node_ids():
            await self.start(node)

    async def stop(self, node: int, timeout: float = 5.0) -> int | None:
        """SIGTERM (after SIGCONT if paused), SIGKILL after ``timeout``; the exit code."""
        proc = self.procs.get(node)
        if proc is None:
            return None
        if proc.returncode is None:
            await self.resume(node)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                await self.kill(node)
        return proc.returncode

    async def stop_all(self, timeout: float = 5.0) -> None:
        await asyncio.gather(*(self.stop(n, timeout) for n in self.node_ids()))

    async def __aenter__(self) -> SubprocessCluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()
