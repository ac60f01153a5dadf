"""``kvraft cluster up|down|status [SPEC]``: a local cluster of OS processes.

``up`` starts one ``kvraft serve`` per node of SPEC (default ``cluster/local-3.toml``),
waits for a leader, prints the endpoints and log files, then stays in the foreground
until Ctrl-C and stops the nodes cleanly (SIGTERM, then SIGKILL after a bounded wait).
``--detach`` returns at once and leaves them running; ``down`` stops them by the PIDs
``up`` recorded (only processes that are still those nodes). See
:mod:`kvraft.cluster_launcher` for the Python API the tests use.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from kvraft.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, run_guarded
from kvraft.cli.output import emit
from kvraft.cluster_launcher import LauncherError, LocalCluster, SpecError, load_spec
from kvraft.cluster_launcher.procs import PidFile, is_node_process
from kvraft.cluster_launcher.spec import ClusterSpec

DEFAULT_SPEC = "cluster/local-3.toml"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _spec(args: argparse.Namespace) -> ClusterSpec:
    try:
        return load_spec(args.spec)
    except SpecError as e:
        hint = " (run from the repository root, or pass the spec's path)" \
            if args.spec == DEFAULT_SPEC else ""
        raise CliError(f"{e}{hint}", EXIT_USAGE) from None


def _relative(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _up(args: argparse.Namespace) -> int:
    spec = _spec(args)
    cluster = LocalCluster(spec, notify=_say)
    _say(f"starting {spec.name}: {len(spec.nodes)} nodes, data in {_relative(spec.data_root)}")
    try:
        leader = cluster.start(timeout=args.wait)
    except LauncherError as e:
        raise CliError(f"cluster up: {e}") from None
    endpoints = ",".join(spec.endpoints())
    for n in spec.nodes:
        mark = "  (leader)" if n.id == leader else ""
        _say(f"  node {n.id}  {n.address}  pid {cluster.pid(n.id)}  "
             f"log {_relative(spec.log_path(n.id))}{mark}")
    print(f"endpoints: {endpoints}", flush=True)
    _say(f"try:  kvraft put hello world --endpoints {endpoints}")
    _say(f"      kvraft status --endpoints {endpoints}")
    down = "kvraft cluster down" + ("" if args.spec == DEFAULT_SPEC else f" {args.spec}")
    if args.detach:
        _say(f"running in the background; stop it with `{down}`")
        return EXIT_OK
    _say(f"running; press Ctrl-C to stop (or `{down}` from another terminal)")
    return _foreground(cluster)


def _foreground(cluster: LocalCluster) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        known = set(cluster.running_ids())
        while not stop.wait(0.5):
            alive = set(cluster.running_ids())
            for node_id in sorted(known - alive):
                _say(f"node {node_id} exited; see {_relative(cluster.log_path(node_id))}")
            known = alive
            if not alive:
                _say("every node has exited; stopping")
                return EXIT_FAILED
        _say("stopping nodes...")
        cluster.stop(timeout=10.0)
        _say("stopped")
        return EXIT_OK
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _down(args: argparse.Namespace) -> int:
    spec = _spec(args)
    recorded = PidFile.load(spec.pid_file)
    if recorded is None:
        _say(f"{spec.name} is not running (no PID file at {_relative(spec.pid_file)})")
        return EXIT_OK
    cluster = LocalCluster(spec, notify=_say)
    ids = cluster.adopt()
    if not ids:
        spec.pid_file.unlink(missing_ok=True)
        _say(f"{spec.name} is not running; removed the stale PID file "
             f"{_relative(spec.pid_file)}")
        return EXIT_OK
    _say(f"stopping {spec.name}: nodes {', '.join(map(str, ids))}")
    cluster.stop(timeout=args.wait)
    spec.pid_file.unlink(missing_ok=True)
    _say("stopped")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    spec = _spec(args)
    recorded = PidFile.load(spec.pid_file)
    pids = {r.node_id: r for r in recorded.nodes} if recorded else {}
    cluster = LocalCluster(spec)
    rows = []
    for n in spec.nodes:
        rec = pids.get(n.id)
        running = rec is not None and is_node_process(rec)
        st = cluster.status(n.id, timeout=1.0)
        rows.append({
            "id": n.id, "address": n.address,
            "pid": rec.pid if rec and running else "-",
            "process": "running" if running else ("stale pid" if rec else "not started"),
            "role": st.role if st else "-", "term": st.term if st else "-",
            "leader": (st.leader_id or "none") if st else "-",
            "log": _relative(spec.log_path(n.id)),
        })
    emit(rows, ["id", "address", "pid", "process", "role", "term", "leader", "log"],
         args.write_out)
    return EXIT_OK if any(r["process"] == "running" for r in rows) else EXIT_FAILED


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cluster", help="run a local cluster (up, down, status)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("up", help="start every node and wait for a leader",
                       description="Start one `kvraft serve` process per node of SPEC, wait "
                       "for a leader, print the endpoints; stay in the foreground until "
                       "Ctrl-C (then stop the nodes), or return at once with --detach.")
    s.add_argument("spec", nargs="?", default=DEFAULT_SPEC)
    s.add_argument("--detach", action="store_true", help="leave the nodes running and return")
    s.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for a leader (default: 30)")
    s.set_defaults(func=lambda a: run_guarded(lambda: _up(a)))
    s = sub.add_parser("down", help="stop the nodes `cluster up` started")
    s.add_argument("spec", nargs="?", default=DEFAULT_SPEC)
    s.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for a clean stop before SIGKILL (default: 10)")
    s.set_defaults(func=lambda a: run_guarded(lambda: _down(a)))
    s = sub.add_parser("status", help="which nodes run, and their roles")
    s.add_argument("spec", nargs="?", default=DEFAULT_SPEC)
    s.add_argument("-w", "--write-out", choices=["table", "json", "simple"], default="table")
    s.set_defaults(func=lambda a: run_guarded(lambda: _status(a)))
