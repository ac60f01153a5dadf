"""Start, stop, kill and pause the ``kvraft serve`` processes of a local cluster.

:class:`LocalCluster` is the one launcher used by ``kvraft cluster up|down|status``, the
integration tests and the fault-injection harness. Each node is a separate OS process in
its own session (so a Ctrl-C in the terminal reaches only the launcher, which then stops
the nodes with SIGTERM), with stdout and stderr appended to ``<data_root>/logs/n<id>.log``.
Started PIDs are recorded in ``<data_root>/pids.json`` so another process can stop them;
a recorded PID is signalled only while it is still that ``kvraft serve`` process.

Threading: a LocalCluster is not thread-safe; drive it from one thread (or one asyncio
task through ``asyncio.to_thread``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from kvraft.cluster_launcher.probe import NodeStatus, probe_status
from kvraft.cluster_launcher.procs import (
    NodeRecord,
    PidFile,
    is_node_process,
    process_start_time,
)
from kvraft.cluster_launcher.spec import ClusterSpec, NodeSpec, render_spec, split_address


class LauncherError(Exception):
    """A launcher operation failed for a reason the user can act on; the message says
    what failed, why and what to try."""


class AlreadyRunning(LauncherError):
    """The cluster (or a node) is already running."""


class PortInUse(LauncherError):
    """A node's port is taken by another process."""


class NodeExited(LauncherError):
    """A node process exited while we waited for it; the message holds its log tail."""


@dataclass(slots=True)
class NodeProcess:
    """A node this launcher started (or adopted from the PID file)."""

    spec: NodeSpec  # the node's id and addresses
    pid: int  # OS process id
    start_time: int | None  # /proc starttime, to recognise the process later
    log_path: Path  # where its stdout/stderr go
    popen: subprocess.Popen[bytes] | None = None  # set when this object started it
    paused: bool = False  # True between pause() and resume()

    def record(self) -> NodeRecord:
        return NodeRecord(self.spec.id, self.pid, self.start_time, self.spec.address,
                          str(self.log_path))

    def alive(self) -> bool:
        """True while the process runs (reaps it if it was our child and exited)."""
        if self.popen is not None:
            return self.popen.poll() is None
        return is_node_process(self.record())

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None


def port_free(address: str) -> bool:
    """True if nothing listens on ``address`` (we could bind it without SO_REUSEPORT)."""
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a text file ("" if it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class LocalCluster:
    """The processes of one local cluster described by ``spec``.

    ``serve_args`` are extra ``kvraft serve`` flags for every node (e.g. ``--tick-ms``);
    ``env`` is added to each node's environment; ``notify`` receives progress lines
    (stale PID file removed, node started...).
    """

    spec: ClusterSpec
    serve_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    notify: Callable[[str], None] = lambda _msg: None
    nodes: dict[int, NodeProcess] = field(default_factory=dict)  # started and not stopped
    extra: dict[int, NodeSpec] = field(default_factory=dict)  # nodes added beyond the spec

    # ------------------------------------------------------------------ lookups
    def node_spec(self, node_id: int) -> NodeSpec:
        if node_id in self.extra:
            return self.extra[node_id]
        return self.spec.node(node_id)

    def all_specs(self) -> list[NodeSpec]:
        return list(self.spec.nodes) + [self.extra[i] for i in sorted(self.extra)]

    def endpoints(self, ids: Iterable[int] | None = None) -> list[str]:
        """Client addresses of the given nodes (default: every node of the spec)."""
        if ids is None:
            return self.spec.endpoints()
        return [self.node_spec(i).address for i in ids]

    def running_ids(self) -> list[int]:
        """Ids of nodes whose process is alive (paused ones included)."""
        return sorted(i for i, n in self.nodes.items() if n.alive())

    def pid(self, node_id: int) -> int:
        return self._node(node_id).pid

    def log_path(self, node_id: int) -> Path:
        return self.spec.log_path(node_id)

    def _node(self, node_id: int) -> NodeProcess:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise LauncherError(f"node {node_id} was not started by this launcher") from None

    # ------------------------------------------------------------------ pid file
    def adopt(self) -> list[int]:
        """Take over the nodes recorded in the PID file that still run (used by
        ``cluster down|status`` from another process). Returns their ids."""
        recorded = PidFile.load(self.spec.pid_file)
        if recorded is None:
            return []
        for r in recorded.nodes:
            if is_node_process(r) and r.node_id not in self.nodes:
                spec = self.extra.get(r.node_id) or next(
                    (n for n in self.spec.nodes if n.id == r.node_id),
                    NodeSpec(r.node_id, r.address),
                )
                self.nodes[r.node_id] = NodeProcess(spec, r.pid, r.start_time, Path(r.log))
        return sorted(self.nodes)

    def _save_pids(self) -> None:
        live = [self.nodes[i].record() for i in sorted(self.nodes)]
        if not live:
            with contextlib.suppress(FileNotFoundError):
                self.spec.pid_file.unlink()
            return
        PidFile(self.spec.name, str(self.spec.path) if self.spec.path else None,
                os.getpid(), tuple(live)).dump(self.spec.pid_file)

    def _check_not_running(self) -> None:
        recorded = PidFile.load(self.spec.pid_file)
        if recorded is None:
            if self.spec.pid_file.exists():
                self.notify(f"removing unreadable PID file {self.spec.pid_file}")
                self.spec.pid_file.unlink()
            return
        running = [r for r in recorded.nodes if is_node_process(r)]
        if running:
            listing = ", ".join(f"node {r.node_id} pid {r.pid}" for r in running)
            down = "kvraft cluster down" + (f" {recorded.spec}" if recorded.spec else "")
            raise AlreadyRunning(
                f"cluster {self.spec.name!r} is already running ({listing}); "
                f"use it, or stop it first with `{down}`"
            )
        self.notify(
            f"removing stale PID file {self.spec.pid_file} "
            f"(the processes it names have exited)"
        )
        self.spec.pid_file.unlink()

    # ------------------------------------------------------------------ starting
    def _spec_path(self) -> Path:
        if self.spec.path is not None:
            return self.spec.path
        path = self.spec.data_root / "cluster.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_spec(self.spec))
        return path

    def command(self, node_id: int, *, join: bool = False,
                extra_args: Sequence[str] = ()) -> list[str]:
        """The argv that runs node ``node_id``."""
        argv = [sys.executable, "-m", "kvraft.cli.main", "serve"]
        if node_id in self.extra:  # not in the spec file: give everything as flags
            node = self.extra[node_id]
            peers = ",".join(f"{n.id}={n.address}" for n in self.all_specs())
            argv += ["--id", str(node_id), "--listen", node.address, "--peers", peers,
                     "--data-dir", str(self.spec.data_dir(node_id)),
                     "--cluster-id", self.spec.name]
        else:
            argv += ["--cluster", str(self._spec_path()), "--id", str(node_id)]
        if join:
            argv.append("--join")
        return argv + list(self.serve_args) + list(extra_args)

    def start(self, ids: Iterable[int] | None = None, *, wait: bool = True,
              timeout: float = 30.0) -> int | None:
        """Start the given nodes (default: all of the spec) after checking that the
        cluster is not already running and that every port is free; if ``wait``, wait
        for a leader and return its id. Raises AlreadyRunning, PortInUse, NodeExited,
        LauncherError (timeout); on failure every node started here is stopped again."""
        chosen = list(ids) if ids is not None else self.spec.ids
        if not self.nodes:
            self._check_not_running()
        for node_id in chosen:
            if node_id in self.nodes and self.nodes[node_id].alive():
                raise AlreadyRunning(f"node {node_id} is already running "
                                     f"(pid {self.nodes[node_id].pid})")
            self._check_ports(self.node_spec(node_id))
        started: list[int] = []
        try:
            for node_id in chosen:
                self.start_node(node_id, check_ports=False)
                started.append(node_id)
            return self.wait_for_leader(timeout, ids=chosen) if wait else None
        except BaseException:
            for node_id in started:
                self.stop_node(node_id, timeout=5.0)
            raise

    def _check_ports(self, node: NodeSpec) -> None:
        for label, address in (("gRPC", node.address), ("metrics", node.metrics)):
            if address and not port_free(address):
                where = f" in {self.spec.path}" if self.spec.path else ""
                raise PortInUse(
                    f"node {node.id}: {label} address {address} is already in use by "
                    f"another process; stop that process or choose other ports{where}"
                )

    def add_node(self, node: NodeSpec) -> None:
        """Make a node beyond the spec known (for membership changes); start it with
        ``start_node(node.id, join=True)``."""
        if node.id in self.spec.ids or node.id in self.extra:
            raise LauncherError(f"node {node.id} is already part of cluster {self.spec.name!r}")
        self.extra[node.id] = node

    def start_node(self, node_id: int, *, join: bool = False, extra_args: Sequence[str] = (),
                   check_ports: bool = True) -> NodeProcess:
        """Start one node's process (it keeps its data dir, so this is also "restart
        after kill"). Does not wait for it to serve."""
        node = self.node_spec(node_id)
        if node_id in self.nodes and self.nodes[node_id].alive():
            raise AlreadyRunning(f"node {node_id} is already running (pid {self.pid(node_id)})")
        if check_ports:
            self._check_ports(node)
        log_path = self.spec.log_path(node_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.spec.data_root.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(self.env)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                self.command(node_id, join=join, extra_args=extra_args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.nodes[node_id] = NodeProcess(node, popen.pid, process_start_time(popen.pid),
                                          log_path, popen)
        self._save_pids()
        return self.nodes[node_id]

    # ------------------------------------------------------------------ faults & stopping
    def _signal(self, node_id: int, sig: signal.Signals) -> None:
        proc = self._node(node_id)
        if not proc.alive():
            raise NodeExited(f"node {node_id} (pid {proc.pid}) is not running")
        os.kill(proc.pid, sig)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL the node (a crash: nothing is flushed) and reap it."""
        proc = self._node(node_id)
        if proc.alive():
            os.kill(proc.pid, signal.SIGKILL)
        self._reap(node_id, timeout=10.0)

    def pause_node(self, node_id: int) -> None:
        """SIGSTOP: the process freezes, its sockets stay open."""
        self._signal(node_id, signal.SIGSTOP)
        self.nodes[node_id].paused = True

    def resume_node(self, node_id: int) -> None:
        """SIGCONT a paused node."""
        self._signal(node_id, signal.SIGCONT)
        self.nodes[node_id].paused = False

    def stop_node(self, node_id: int, timeout: float = 10.0) -> int | None:
        """SIGTERM (a clean stop: a leader hands over leadership first), then SIGKILL if
        it has not exited within ``timeout`` seconds. Returns the exit code if known."""
        proc = self.nodes.get(node_id)
        if proc is None:
            return None
        if proc.alive():
            if proc.paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            if not self._wait_exit(proc, timeout):
                self.notify(f"node {node_id} did not stop within {timeout:g}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        return self._reap(node_id, timeout=10.0)

    def restart_node(self, node_id: int, *, stop_timeout: float = 10.0) -> NodeProcess:
        """Stop (cleanly) and start one node again."""
        self.stop_node(node_id, timeout=stop_timeout)
        return self.start_node(node_id)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node: SIGTERM to all at once, wait up to ``timeout``, then SIGKILL."""
        for proc in self.nodes.values():
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    if proc.paused:
                        os.kill(proc.pid, signal.SIGCONT)
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node_id in sorted(self.nodes):
            self.stop_node(node_id, timeout=max(0.1, deadline - time.monotonic()))

    def _wait_exit(self, proc: NodeProcess, timeout: float) -> bool:
        if proc.popen is not None:
            try:
                proc.popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while proc.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _reap(self, node_id: int, timeout: float) -> int | None:
        proc = self.nodes.get(node_id)
        if proc is None:
            return None
        self._wait_exit(proc, timeout)
        code = proc.exit_code()
        del self.nodes[node_id]
        self._save_pids()
        return code

    # ------------------------------------------------------------------ observing
    def status(self, node_id: int, timeout: float = 1.0) -> NodeStatus | None:
        """The node's Admin Status, or None if it does not answer within ``timeout``."""
        return probe_status(self.node_spec(node_id).address, timeout)

    def check_alive(self, ids: Iterable[int]) -> None:
        """Raise NodeExited (with the log tail) if one of these started nodes exited."""
        for node_id in ids:
            proc = self.nodes.get(node_id)
            if proc is not None and not proc.alive():
                code = proc.exit_code()
                log = tail(proc.log_path)
                self.nodes.pop(node_id)
                self._save_pids()
                raise NodeExited(
                    f"node {node_id} exited"
                    + (f" with code {code}" if code is not None else "")
                    + f" during start-up; its log ({proc.log_path}) ends with:\n{log}"
                )

    def wait_for_leader(self, timeout: float = 30.0, ids: Iterable[int] | None = None,
                        exclude: Iterable[int] = ()) -> int:
        """Wait until a node among ``ids`` (default: the running ones), other than
        ``exclude``, reports itself leader, and a majority of the answering nodes agree.
        Returns the leader id. Raises NodeExited or LauncherError on timeout."""
        chosen = list(ids) if ids is not None else list(self.nodes)
        excluded = set(exclude)
        deadline = time.monotonic() + timeout
        last: dict[int, NodeStatus | None] = {}
        while True:
            self.check_alive(chosen)
            views: dict[int, int] = {}
            for node_id in chosen:
                proc = self.nodes.get(node_id)
                if proc is None or proc.paused:
                    continue
                last[node_id] = st = self.status(node_id, timeout=0.5)
                if st is not None:
                    views[node_id] = st.leader_id
            for node_id, st in last.items():
                if (st is not None and st.is_leader and node_id not in excluded
                        and 2 * sum(v == node_id for v in views.values()) > len(views)):
                    return node_id
            if time.monotonic() >= deadline:
                seen = ", ".join(
                    f"n{i}: {'no answer' if s is None else s.describe()}"
                    for i, s in sorted(last.items())
                ) or "no node answered"
                raise LauncherError(
                    f"no leader elected within {timeout:g}s ({seen}); "
                    f"see the node logs under {self.spec.data_root / 'logs'}"
                )
            time.sleep(0.1)

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop(timeout=5.0)
