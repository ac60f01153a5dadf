#!/usr/bin/env python3
"""kvraft and etcd 3.4 side by side, in one run, with the same load generator.

Starts a 3-node kvraft cluster (our launcher, data under /tmp) and a 3-member etcd 3.4
cluster (the shared kit's ``etcd_cluster.sh``, data under /tmp), drives both with the
shared kit's ``loadgen.py`` -- etcd through its own raw-stub driver, kvraft through a
driver built on ``kvraft.client.Client`` (the multiplexed Batch stream) -- and prints a
markdown table of medians with kvraft/etcd ratios, the date and the machine. Every
process it started is stopped by PID on the way out, whatever happens.

    .venv/bin/python scripts/bench_compare.py                      # 3 reps x 5 s, ~6 min
    .venv/bin/python scripts/bench_compare.py --reps 1 --duration 3 --workloads put64
    KVRAFT_BENCH_KIT=/path/to/shared/bench .venv/bin/python scripts/bench_compare.py

Workloads (closed loop, 100-byte values): put1, put64, put256 (puts with 1/64/256 in
flight, keyspace 100k), getlin64 and getser64 (gets of a pre-filled 10k keyspace with 64
in flight; linearizable = ReadIndex, serializable = STALE on any node for kvraft and
``serializable`` on the leader for etcd). Reps are interleaved (etcd, kvraft, etcd, ...)
so that noise from other processes on the box falls on both systems alike; each result
line records ``other_cpu_cores``, the CPU other processes used during its window.

The kit lives at ``../shared/bench`` relative to the repository unless --kit or
$KVRAFT_BENCH_KIT says otherwise. ``loadgen`` is also the child mode of this script:
``bench_compare.py loadgen <loadgen args>`` runs the kit's loadgen with our kvraft driver
registered (``--procs`` must stay 1: its extra processes would not know the driver).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_KIT = REPO.parent / "shared" / "bench"
KIT_ENV = "KVRAFT_BENCH_KIT"


@dataclass(frozen=True)
class Workload:
    name: str  # short id used on the command line and in the table
    title: str  # what the table calls it
    args: tuple[str, ...]  # loadgen arguments
    needs_fill: bool = False  # reads: the keyspace is written once beforehand


GET_KEYSPACE = 10_000
WORKLOADS = {
    w.name: w
    for w in (
        Workload("put1", "put, 1 in flight", ("--op", "put", "--concurrency", "1")),
        Workload("put64", "put, 64 in flight", ("--op", "put", "--concurrency", "64")),
        Workload("put256", "put, 256 in flight", ("--op", "put", "--concurrency", "256")),
        Workload("getlin64", "linearizable get, 64 in flight",
                 ("--op", "get", "--read-consistency", "linearizable",
                  "--keyspace", str(GET_KEYSPACE), "--concurrency", "64"), True),
        Workload("getser64", "serializable get, 64 in flight",
                 ("--op", "get", "--read-consistency", "serializable",
                  "--keyspace", str(GET_KEYSPACE), "--concurrency", "64"), True),
    )
}


# =============================================================================== child mode
def kit_dir(explicit: str | None = None) -> Path:
    kit = Path(explicit or os.environ.get(KIT_ENV) or DEFAULT_KIT).resolve()
    if not (kit / "loadgen.py").is_file():
        raise SystemExit(f"no loadgen.py in {kit}: point --kit or ${KIT_ENV} at the shared "
                         "bench kit (the directory with loadgen.py and etcd_cluster.sh)")
    return kit


def register_kvraft_driver(loadgen: Any) -> None:
    """Replace the kit's placeholder KvRaftDriver with one built on kvraft.client."""
    from kvraft.client import Client, Consistency

    consistency = {"linearizable": Consistency.LINEARIZABLE,
                   "serializable": Consistency.STALE}

    class KvRaftClientDriver(loadgen.Driver):  # type: ignore[misc,name-defined]
        """kvraft through its client library: leader discovery and redirects, exactly-once
        write sessions, every request multiplexed over one Batch stream per node."""

        name = "kvraft"

        async def connect(self) -> None:
            self.client = Client(self.endpoints, timeout=self.opts.rpc_timeout)
            # returns once a leader answered a linearizable read: the first put can go
            await self.client.get(b"bench/connect", timeout=30.0)

        async def put(self, key: bytes, value: bytes) -> None:
            await self.client.put(key, value)

        async def get(self, key: bytes, consistency_name: str = "linearizable") -> bytes | None:
            kv = await self.client.get(key, consistency=consistency[consistency_name])
            return kv.value if kv is not None else None

        async def close(self) -> None:
            await self.client.close()

        def describe(self) -> dict[str, Any]:
            return {"leader": self.client.leader, "attempts": self.client.stats.attempts,
                    "redirects": self.client.stats.redirects}

    loadgen.DRIVERS["kvraft"] = KvRaftClientDriver


def child_main(argv: list[str]) -> None:
    kit = kit_dir(os.environ.get(KIT_ENV))
    sys.path.insert(0, str(kit))
    sys.path.insert(0, str(REPO))
    import loadgen  # the shared kit's generator, unchanged

    register_kvraft_driver(loadgen)
    sys.argv = [str(kit / "loadgen.py"), *argv]
    loadgen.main()


# =============================================================================== systems
def _kill_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM these PIDs (ours), wait, then SIGKILL whatever is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class System:
    """One cluster under test: started once, driven by loadgen, stopped by PID."""

    name = ""
    endpoints: list[str]
    pids: list[int]

    def loadgen_args(self) -> list[str]:
        watch = ",".join(f"n{i + 1}:{pid}" for i, pid in enumerate(self.pids))
        return ["--driver", self.name, "--endpoints", ",".join(self.endpoints),
                "--watch-pids", watch]

    def stop(self) -> None:
        raise NotImplementedError


class KvRaftSystem(System):
    name = "kvraft"

    def __init__(self, workdir: Path, serve_args: list[str]) -> None:
        from kvraft.cluster_launcher import LocalCluster, ephemeral_spec

        spec = ephemeral_spec(3, workdir / "kvraft")
        self.cluster = LocalCluster(spec, serve_args=serve_args)
        self.cluster.start(timeout=60.0)
        self.endpoints = self.cluster.endpoints()
        self.pids = [self.cluster.pid(i) for i in spec.ids]

    def stop(self) -> None:
        try:
            self.cluster.stop(timeout=10.0)
        finally:
            _kill_pids(self.pids, timeout=1.0)  # no-op unless the launcher left one


class EtcdSystem(System):
    name = "etcd"

    def __init__(self, kit: Path, workdir: Path) -> None:
        self.script = str(kit / "etcd_cluster.sh")
        self.env = dict(os.environ, ETCD_BENCH_DIR=str(workdir / "etcd"))
        self.pids = []
        try:
            subprocess.run([self.script, "start", "3"], env=self.env, check=True,
                           stdout=subprocess.DEVNULL, timeout=90)
        finally:  # even a failed start may have left members running
            pids = self._run("pids").strip()
            self.pids = [int(p) for p in pids.split(",") if p.strip().isdigit()]
        self.endpoints = self._run("endpoints").strip().split(",")

    def _run(self, cmd: str) -> str:
        return subprocess.run([self.script, cmd, "3"], env=self.env, capture_output=True,
                              text=True, timeout=60).stdout

    def loadgen_args(self) -> list[str]:
        metrics = ",".join(f"n{i + 1}=http://{ep}/metrics" for i, ep in enumerate(self.endpoints))
        return [*super().loadgen_args(), "--target", "leader", "--metrics-urls", metrics]

    def stop(self) -> None:
        try:
            subprocess.run([self.script, "stop", "3"], env=self.env, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            _kill_pids(self.pids, timeout=1.0)


# =============================================================================== running
def run_loadgen(kit: Path, system: System, extra: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "loadgen", *system.loadgen_args(),
           *extra, "--quiet"]
    env = dict(os.environ, **{KIT_ENV: str(kit)})
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen against {system.name} failed (rc={proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def summarize(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(system, workload) -> medians, column by column, over the reps."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["driver"], r["label"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        ops = [r["ops_per_s"] for r in rs]
        out[key] = {
            "reps": len(rs),
            "ops": median(ops),
            "ops_min": min(ops),
            "ops_max": max(ops),
            "p50": median([r["lat_ms"]["p50"] for r in rs]),
            "p99": median([r["lat_ms"]["p99"] for r in rs]),
            "p999": median([r["lat_ms"]["p999"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "client_cpu": median([r["client_cpu_cores"] for r in rs]),
            "server_cpu": median([r["server_cpu_cores_total"] for r in rs]),
            "other_cpu": median([r["other_cpu_cores"] for r in rs]),
        }
    return out


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        from importlib.metadata import version
        grpc_v = version("grpcio")
    except Exception:  # noqa: BLE001 - informational only
        grpc_v = "?"
    etcd_v = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    etcd_v = etcd_v.splitlines()[0].split(":")[-1].strip() if etcd_v else "?"
    return (f"{os.cpu_count()} CPU {cpu}, Linux {platform.release()}, Python "
            f"{platform.python_version()}, grpcio {grpc_v}, etcd {etcd_v}")


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if digits == 0 else f"{v:.{digits}f}"


def _ops(s: dict[str, Any] | None) -> str:
    """Median ops/s, with the range over the reps when there were several."""
    if not s:
        return "-"
    if s["reps"] < 2:
        return _fmt(s["ops"], 0)
    return f"{_fmt(s['ops'], 0)} [{_fmt(s['ops_min'], 0)}-{_fmt(s['ops_max'], 0)}]"


def render(summary: dict[tuple[str, str], dict[str, Any]], workloads: list[Workload],
           reps: int, duration: float) -> str:
    lines = [
        f"kvraft vs etcd, {time.strftime('%Y-%m-%d %H:%M %Z')}, {machine()}; medians of {reps} "
        f"x {duration:g} s, 100-byte values, one closed-loop load process (uvloop, grpc.aio)",
        "",
        "| workload | etcd ops/s | etcd p50 / p99 ms | kvraft ops/s | kvraft p50 / p99 / p99.9 "
        "ms | kvraft / etcd | kvraft errors | CPU cores client / servers (etcd; kvraft) "
        "| other CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workloads:
        e = summary.get(("etcd", w.name))
        k = summary.get(("kvraft", w.name))
        ratio = (f"**{k['ops'] / e['ops']:.2f}x**" if e and k and e["ops"] else "-")
        cpu = "; ".join(f"{_fmt(s['client_cpu'], 2)} / {_fmt(s['server_cpu'], 2)}"
                        for s in (e, k) if s)
        other = max((s["other_cpu"] for s in (e, k) if s and s["other_cpu"] is not None),
                    default=None)
        lines.append(
            f"| {w.title} "
            f"| {_ops(e)} "
            f"| {_fmt(e['p50'], 2) + ' / ' + _fmt(e['p99'], 2) if e else '-'} "
            f"| {_ops(k)} "
            f"| {_fmt(k['p50'], 2) + ' / ' + _fmt(k['p99'], 2) + ' / ' + _fmt(k['p999'], 2) if k else '-'} "  # noqa: E501
            f"| {ratio} | {k['errors'] if k else '-'} | {cpu} | {_fmt(other, 2)} |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def started(systems: list[str], kit: Path, workdir: Path,
            serve_args: list[str]) -> Iterator[dict[str, System]]:
    up: dict[str, System] = {}
    try:
        for name in systems:
            t0 = time.monotonic()
            up[name] = (EtcdSystem(kit, workdir) if name == "etcd"
                        else KvRaftSystem(workdir, serve_args))
            log(f"{name} up in {time.monotonic() - t0:.1f} s: {','.join(up[name].endpoints)} "
                f"pids {up[name].pids}")
        yield up
    finally:
        for name, system in up.items():
            try:
                system.stop()
                log(f"{name} stopped (pids {system.pids})")
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                log(f"stopping {name} failed: {exc!r}")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loadgen"]:
        child_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kit", help=f"shared bench kit directory (default ${KIT_ENV} or "
                                  f"{DEFAULT_KIT})")
    ap.add_argument("--systems", default="etcd,kvraft", help="comma list: etcd,kvraft")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma list of {', '.join(WORKLOADS)}")
    ap.add_argument("--reps", type=int, default=3, help="runs per system and workload")
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per run")
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `kvraft serve` flag for every node (repeatable)")
    ap.add_argument("--workdir", help="where cluster data goes (default: a new /tmp dir)")
    ap.add_argument("--out", help="append every raw loadgen JSON line to this file")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args(argv)

    kit = kit_dir(args.kit)
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - {"etcd", "kvraft"}
    if unknown:
        ap.error(f"unknown system(s): {', '.join(sorted(unknown))}")
    try:
        workloads = [WORKLOADS[w] for w in args.workloads.split(",") if w]
    except KeyError as exc:
        ap.error(f"unknown workload {exc}; choose from {', '.join(WORKLOADS)}")
    own_workdir = args.workdir is None  # ours to delete once everything went well
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kvraft-bench-", dir="/tmp"))
    common = ["--duration", str(args.duration), "--warmup", str(args.warmup),
              "--value-size", str(args.value_size)]
    run_timeout = args.warmup + args.duration + 120
    results: list[dict[str, Any]] = []
    with started(systems, kit, workdir, args.serve_arg) as up:
        filled: set[str] = set()
        for w in workloads:
            for name in systems:
                if w.needs_fill and name not in filled:
                    log(f"{name}: fill {GET_KEYSPACE} keys")
                    run_loadgen(kit, up[name], ["--op", "fill", "--keyspace", str(GET_KEYSPACE),
                                                "--concurrency", "64", *common], 300)
                    filled.add(name)
            for rep in range(args.reps):
                for name in systems:
                    r = run_loadgen(kit, up[name], [*w.args, *common, "--label", w.name],
                                    run_timeout)
                    results.append(r)
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(json.dumps(r) + "\n")
                    lm = r["lat_ms"]
                    log(f"{w.name} rep {rep + 1} {name}: {r['ops_per_s']:,.0f} ops/s "
                        f"p50 {lm['p50']} p99 {lm['p99']} ms err {r['errors']} "
                        f"other_cpu {r['other_cpu_cores']}")
    if own_workdir:  # kept after a failure: the node logs are in it
        shutil.rmtree(workdir, ignore_errors=True)
    table = render(summarize(results), workloads, args.reps, args.duration)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
