"""A real kvraft cluster for integration tests: `kvraft serve` processes on 127.0.0.1.

Each node is a separate OS process started with ``python -m kvraft.cli.main serve`` on an
ephemeral port, with its data dir and log file under the test's tmp dir. Every wait is
a condition polled against a deadline; every process is killed by PID when the test ends.
The tests talk to the nodes through the generated gRPC stubs directly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc

T = TypeVar("T")

TICK_MS = 25
ELECTION_TICKS = 10
ELECTION_TIMEOUT_S = 2 * ELECTION_TICKS * TICK_MS / 1000  # the randomized maximum
LEADER = admin_pb2.LEADER


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], T | None], timeout: float = 20.0,
               interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except grpc.RpcError as exc:
            last_error = exc
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last_error})")


@dataclass
class Node:
    node_id: int
    address: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    channel: Any = None
    kv: Any = None
    admin: Any = None
    stopped: bool = False  # SIGSTOPped
    metrics: str | None = None  # host:port of its /metrics listener, if any

    def connect(self) -> None:
        if self.channel is None:
            self.channel = grpc.insecure_channel(self.address)
            self.kv = kv_pb2_grpc.KVStub(self.channel)
            self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def status(self, timeout: float = 1.0) -> Any:
        self.connect()
        return self.admin.Status(admin_pb2.StatusRequest(), timeout=timeout)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    root: Path
    size: int = 3
    extra_args: list[str] = field(default_factory=list)
    nodes: dict[int, Node] = field(default_factory=dict)
    metrics: bool = False  # give every node a /metrics listener

    def __post_init__(self) -> None:
        for i in range(1, self.size + 1):
            self.nodes[i] = Node(
                node_id=i,
                address=f"127.0.0.1:{free_port()}",
                data_dir=self.root / f"n{i}",
                log_path=self.root / f"n{i}.log",
                metrics=f"127.0.0.1:{free_port()}" if self.metrics else None,
            )

    def add_node(self, node_id: int) -> Node:
        """Define (not start) a new node; start it with ``start(node_id, join=True)``."""
        n = Node(node_id=node_id, address=f"127.0.0.1:{free_port()}",
                 data_dir=self.root / f"n{node_id}", log_path=self.root / f"n{node_id}.log")
        self.nodes[node_id] = n
        return n

    @property
    def peers_flag(self) -> str:
        return ",".join(f"{n.node_id}={n.address}" for n in self.nodes.values())

    # ------------------------------------------------------------------ processes
    def start(self, node_id: int | None = None, *, wait: bool = True, join: bool = False,
              peers: str | None = None) -> None:
        """Start one node (or every node) and wait for its "serving" line. ``peers``
        (``id=host:port,...``) replaces the full --peers list; the node then listens on
        its address via --listen."""
        ids = [node_id] if node_id is not None else list(self.nodes)
        for i in ids:
            n = self.nodes[i]
            cmd = [
                sys.executable, "-m", "kvraft.cli.main", "serve",
                "--id", str(i), "--peers", peers or self.peers_flag, "--data-dir", str(n.data_dir),
                *(["--listen", n.address] if peers else []),
                "--tick-ms", str(TICK_MS), "--election-ticks", str(ELECTION_TICKS),
                "--log-format", "json", "--log-file", str(n.log_path),
                *(["--join"] if join else []),
                *(["--metrics", n.metrics] if n.metrics else []),
                *self.extra_args,
            ]
            n.proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.root
            )
            n.stopped = False
        if wait:
            for i in ids:
                self._wait_serving(self.nodes[i])

    def _wait_serving(self, n: Node) -> None:
        assert n.proc is not None and n.proc.stdout is not None
        line = n.proc.stdout.readline()  # bounded: the process either serves or exits
        if b'"serving"' not in line:
            rest = n.proc.stdout.read() if n.proc.poll() is not None else b""
            raise AssertionError(
                f"node {n.node_id} did not start: {line!r} {rest!r}\n{self.log_tail(n.node_id)}"
            )

    def kill(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        n = self.nodes[node_id]
        assert n.proc is not None
        n.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            n.proc.wait(timeout=30)
            if n.proc.stdout is not None:
                n.proc.stdout.close()
            self._close_channel(n)

    def pause(self, node_id: int) -> None:
        self.nodes[node_id].proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        self.nodes[node_id].stopped = True

    def resume(self, node_id: int) -> None:
        self.nodes[node_id].proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        self.nodes[node_id].stopped = False

    def _close_channel(self, n: Node) -> None:
        if n.channel is not None:
            n.channel.close()
        n.channel = n.kv = n.admin = None

    def close(self) -> None:
        for n in self.nodes.values():
            if n.proc is not None and n.proc.poll() is None:
                if n.stopped:
                    n.proc.send_signal(signal.SIGCONT)
                n.proc.kill()
                n.proc.wait(timeout=30)
            if n.proc is not None and n.proc.stdout is not None:
                n.proc.stdout.close()
            self._close_channel(n)

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        try:
            text = self.nodes[node_id].log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ cluster views
    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.alive and not n.stopped]

    def leader(self, timeout: float = 20.0, among: list[int] | None = None) -> Node:
        """Wait until one live node is leader and every other live node knows it."""
        def check() -> Node | None:
            nodes = [n for n in self.live() if among is None or n.node_id in among]
            statuses = {n.node_id: n.status() for n in nodes}
            leaders = [i for i, s in statuses.items() if s.role == LEADER]
            if len(leaders) != 1:
                return None
            lead = leaders[0]
            if all(s.leader_id == lead for s in statuses.values()):
                return self.nodes[lead]
            return None

        return wait_until("a leader known to every live node", check, timeout)

    def followers(self, leader: Node) -> list[Node]:
        return [n for n in self.live() if n.node_id != leader.node_id]

    def wait_applied(self, node: Node, index: int, timeout: float = 30.0) -> None:
        wait_until(f"node {node.node_id} applied >= {index}",
                   lambda: node.status().applied_index >= index, timeout)


# ---------------------------------------------------------------------- request helpers
def put(node: Node, key: bytes, value: bytes, *, session: tuple[int, int] | None = None,
        timeout: float = 5.0, prev_kv: bool = False) -> Any:
    node.connect()
    req = kv_pb2.PutRequest(key=key, value=value, prev_kv=prev_kv)
    if session is not None:
        req.session.client_id, req.session.seq = session
    return node.kv.Put(req, timeout=timeout)


def get(node: Node, key: bytes, *, consistency: int = kv_pb2.LINEARIZABLE,
        timeout: float = 5.0, **kw: Any) -> Any:
    node.connect()
    return node.kv.Range(kv_pb2.RangeRequest(key=key, consistency=consistency, **kw),
                         timeout=timeout)


def status_code(exc: grpc.RpcError) -> grpc.StatusCode:
    return exc.code()  # type: ignore[no-any-return, attr-defined]


def trailing(exc: grpc.RpcError) -> dict[str, str]:
    md = exc.trailing_metadata() or ()  # type: ignore[attr-defined]
    return {k: v for k, v in md}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
