"""``kvraft bench``: drive a cluster through the client library and report what it did.

    kvraft bench                                     # a throwaway local 3-node cluster
    kvraft bench --endpoints 127.0.0.1:7101,... --workload get --consistency stale
    kvraft bench --workload mixed --read-ratio 0.9 --concurrency 256 --duration 30 --json

Without ``--endpoints`` (or ``$KVRAFT_ENDPOINTS``) it starts a local cluster of
``--nodes`` processes on free loopback ports with its data in a temporary directory,
and stops it (and removes the data) when done. Read workloads first write every key of
the keyspace once (``--no-fill`` skips that). The report: operations per second,
latency p50/p99/p99.9 (and more with ``--json``), errors by type, and the CPU this
client process used (the load generator shares the machine with the servers when the
cluster is local). A live line on stderr shows progress when it is a terminal.

Numbers from one run on a shared machine are noisy: compare systems in the same run
(see ``scripts/bench_compare.py`` for kvraft beside etcd) and repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kvraft.cli.benchload import WORKLOADS, LoadSpec, Window, fill, run, summary
from kvraft.cli.common import (
    ENDPOINTS_ENV,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    endpoints_from,
    run_guarded,
)
from kvraft.client import Client, Consistency


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="measure throughput and latency of a cluster",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoints", metavar="HOST:PORT,...",
                   help=f"the cluster to measure (default: ${ENDPOINTS_ENV}; if neither is "
                        "set, a temporary local cluster is started)")
    p.add_argument("--nodes", type=int, default=3,
                   help="size of the temporary local cluster (default: 3)")
    p.add_argument("--workload", choices=WORKLOADS, default="put",
                   help="put | get | mixed (gets and puts) | txn (compare-and-set); "
                        "default: put")
    p.add_argument("--consistency", default="linearizable",
                   choices=[c.name.lower() for c in Consistency],
                   help="read consistency of get/mixed (default: linearizable)")
    p.add_argument("--read-ratio", type=float, default=0.5,
                   help="mixed: fraction of operations that are gets (default: 0.5)")
    p.add_argument("-c", "--concurrency", type=int, default=64,
                   help="operations in flight (default: 64)")
    p.add_argument("-d", "--duration", type=float, default=10.0,
                   help="measured seconds (default: 10)")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="unmeasured seconds before the window (default: 1)")
    p.add_argument("--value-size", type=int, default=100, help="bytes per value (default: 100)")
    p.add_argument("--keyspace", type=int, default=10_000,
                   help="distinct keys, chosen uniformly (default: 10000)")
    p.add_argument("--no-fill", action="store_true",
                   help="get/mixed/txn: do not write the keyspace first")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="deadline of one operation, retries included (default: 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of key choice and values")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return run_guarded(lambda: _bench(args))


def _spec(args: argparse.Namespace) -> LoadSpec:
    spec = LoadSpec(
        workload=args.workload, concurrency=args.concurrency, duration=args.duration,
        warmup=args.warmup, value_size=args.value_size, keyspace=args.keyspace,
        consistency=Consistency.parse(args.consistency), read_ratio=args.read_ratio,
        seed=args.seed)
    try:
        spec.check()
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    if args.nodes < 1:
        raise CliError("--nodes must be at least 1", EXIT_USAGE)
    return spec


def _bench(args: argparse.Namespace) -> int:
    spec = _spec(args)
    target = args.endpoints or os.environ.get(ENDPOINTS_ENV)
    with _cluster(None if target else args.nodes, quiet=args.json) as local:
        endpoints = local if local is not None else endpoints_from(args)
        result = _run_loop(_drive(endpoints, spec, args))
    result["endpoints"] = endpoints
    result["local_cluster"] = local is not None
    if args.json:
        print(json.dumps(result))
    else:
        print(_text(result))
    return EXIT_OK if not result["errors"] else EXIT_FAILED


@contextlib.contextmanager
def _cluster(nodes: int | None, *, quiet: bool) -> Iterator[list[str] | None]:
    """A temporary local cluster of ``nodes`` processes (None: yield None, start nothing)."""
    if nodes is None:
        yield None
        return
    from kvraft.cluster_launcher import LauncherError, LocalCluster, ephemeral_spec

    root = Path(tempfile.mkdtemp(prefix="kvraft-bench-"))
    cluster = LocalCluster(ephemeral_spec(nodes, root, name="bench"))
    try:
        if not quiet:
            _say(f"starting a local {nodes}-node cluster in {root}")
        try:
            cluster.start(timeout=60.0)
        except LauncherError as e:
            raise CliError(f"could not start the local cluster: {e}") from None
        yield cluster.endpoints()
    finally:
        cluster.stop(timeout=10.0)
        shutil.rmtree(root, ignore_errors=True)


async def _drive(endpoints: list[str], spec: LoadSpec, args: argparse.Namespace) -> dict[str, Any]:
    tty = sys.stderr.isatty() and not args.json
    async with Client(endpoints, timeout=args.timeout) as client:
        if spec.workload != "put" and not args.no_fill:
            if not args.json:
                _say(f"writing {spec.keyspace} keys first (--no-fill skips this)")
            failed = await fill(client, spec)
            if failed:
                raise CliError(f"{failed} of {spec.keyspace} fill writes failed; "
                               "is the cluster healthy? (`kvraft status`)")
        window = await run(client, spec, _progress if tty else None)
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        out = summary(spec, window)
        out["leader"] = client.leader
        return out


def _progress(seconds: float, w: Window) -> None:
    ops = len(w.latencies)
    err = sum(w.errors.values())
    print(f"\r\033[K  {seconds:5.1f}s  {ops:,} ops  {ops / max(seconds, 1e-9):,.0f} ops/s"
          f"  errors {err}", end="", file=sys.stderr, flush=True)


def _text(r: dict[str, Any]) -> str:
    lat = r["latency_ms"]
    what = str(r["workload"])
    if r["consistency"]:
        what += f" ({r['consistency']}"
        what += f", {r['read_ratio']:.0%} reads)" if r["read_ratio"] is not None else ")"
    where = "a local cluster" if r["local_cluster"] else ",".join(r["endpoints"])
    errors = ", ".join(f"{k} {v}" for k, v in sorted(r["error_kinds"].items())) or "none"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f} ms"

    return "\n".join([
        f"workload     {what}, {r['concurrency']} in flight, {r['value_size']}-byte values, "
        f"{r['keyspace']} keys, against {where}",
        f"throughput   {r['ops_per_s']:,.0f} ops/s ({r['ops']:,} ops in {r['duration_s']:g} s)",
        f"latency      p50 {ms(lat['p50'])}  p99 {ms(lat['p99'])}  p99.9 {ms(lat['p999'])}"
        f"  max {ms(lat['max'])}",
        f"errors       {r['errors']} ({errors})",
        f"client CPU   {r['client_cpu_cores']:.2f} cores ({r['client_cpu_s']:.2f} s)",
    ])


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_loop(coro: Any) -> Any:
    """Run on uvloop when available (what the servers use), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(coro)
    return uvloop.run(coro)
