#!/usr/bin/env python3
"""Run a jepsen-like campaign against kvraft (or a fake), print progress and a table.

    python jepsen-like/run.py --nemesis partition,kill,pause --time 60 --runs 10
    python jepsen-like/run.py --target fake --time 10                # pipeline self-test
    python jepsen-like/run.py --target fake-broken:stale-reads       # must find anomalies
    python jepsen-like/run.py --check RUN_DIR                        # re-check a history
    python jepsen-like/run.py --cleanup                              # remove leftover netns

Each run writes a folder under --out (history.jsonl, nemesis.jsonl, summary.json,
timeline.html, latency.svg, throughput.svg, history.porcupine.json, nodes/). Exit code:
0 if every run is valid, 1 if any is invalid, 2 if some are unknown (none invalid).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jepsen_like.campaign import RunConfig, Target, run_once  # noqa: E402
from jepsen_like.client import CONSISTENCIES  # noqa: E402
from jepsen_like.history import pair, read_history  # noqa: E402
from jepsen_like.nemesis.partitions import SHAPES  # noqa: E402
from jepsen_like.nemesis.schedule import NEMESES  # noqa: E402
from jepsen_like.workload import make_workload  # noqa: E402


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="kvraft",
                    help="kvraft (default), fake, or fake-broken:{stale-reads,lost-writes,"
                         "lost-adds}")
    ap.add_argument("--workload", default="register", choices=["register", "set"])
    ap.add_argument("--nemesis", default="partition,kill,pause",
                    help=f"comma-separated, from {','.join(NEMESES)}; 'none' for no faults")
    ap.add_argument("--shapes", default=None,
                    help=f"partition shapes, comma-separated, from {','.join(SHAPES)}")
    ap.add_argument("--time", type=float, default=60.0, help="workload seconds per run")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=3, choices=[3, 5])
    ap.add_argument("--net", default="auto", choices=["auto", "netns", "proxy"],
                    help="partition mechanism for kvraft (auto: netns if possible)")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--rate", type=float, default=200.0, help="invocations/s, all workers")
    ap.add_argument("--op-timeout", type=float, default=2.0)
    ap.add_argument("--consistency", default="linearizable", choices=list(CONSISTENCIES))
    ap.add_argument("--fault-seconds", type=float, default=4.0)
    ap.add_argument("--quiet-seconds", type=float, default=3.0)
    ap.add_argument("--group-size", type=int, default=5, help="register: clients per key")
    ap.add_argument("--ops-per-key", type=int, default=300)
    ap.add_argument("--budget", type=float, default=10.0, help="checker seconds per key")
    ap.add_argument("--tick-ms", type=int, default=50, help="kvraft raft tick")
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "runs",
                    help="where run folders go (default: jepsen-like/runs, git-ignored)")
    ap.add_argument("--check", type=Path, metavar="RUN_DIR",
                    help="re-check RUN_DIR/history.jsonl and print the verdicts")
    ap.add_argument("--cleanup", action="store_true",
                    help="delete leftover jl-* namespaces, veths and bridges")
    return ap.parse_args(argv)


def make_target(args: argparse.Namespace, seed: int) -> Target:
    if args.target.startswith("fake"):
        from jepsen_like.targets import fake_target

        return fake_target(args.target, seed, args.nodes)
    if args.target != "kvraft":
        raise SystemExit(f"unknown target {args.target!r}")
    from jepsen_like.kvraft_target import KvraftCluster

    return KvraftCluster(nodes=args.nodes, net=args.net, tick_ms=args.tick_ms,
                         op_timeout=args.op_timeout).target


def recheck(run_dir: Path, args: argparse.Namespace) -> int:
    ops = pair(read_history(run_dir / "history.jsonl"))
    workload = "set" if any(op.f == "add" for op in ops) else "register"
    wl = make_workload(workload, concurrency=1, consistency="linearizable")
    results = wl.check(ops, args.budget)
    print(json.dumps(results, indent=2, default=str))
    return _exit_code([r["verdict"] for r in results.values()])


def _exit_code(verdicts: list[str]) -> int:
    return 1 if "invalid" in verdicts else 2 if "unknown" in verdicts else 0


def _row(s: dict[str, Any]) -> str:
    c = s["counts"]
    checks = " ".join(f"{k}={v['verdict']}" for k, v in s["checkers"].items()) or \
        s.get("error", "")
    faults = ",".join(f"{k}x{v}" for k, v in s["faults"].items()) or "-"
    return (f"{s['run']:>3} {s['verdict']:>8} {s['ops']:>7} {c['ok']:>6} {c['fail']:>6} "
            f"{c['info']:>5} {s['ops_per_second']:>7.1f} {faults:<28} {checks}")


async def campaign(args: argparse.Namespace) -> int:
    seed0 = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    nemeses = [] if args.nemesis in ("", "none") else args.nemesis.split(",")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out / f"{stamp}-{args.target.replace(':', '-')}-{args.workload}"
    summaries = []
    for run in range(1, args.runs + 1):
        seed = seed0 + run - 1
        cfg = RunConfig(workload=args.workload, nemeses=nemeses,
                        shapes=args.shapes.split(",") if args.shapes else None,
                        time=args.time, concurrency=args.concurrency, rate=args.rate,
                        op_timeout=args.op_timeout, consistency=args.consistency,
                        fault_seconds=args.fault_seconds, quiet_seconds=args.quiet_seconds,
                        budget=args.budget, seed=seed, group_size=args.group_size,
                        ops_per_key=args.ops_per_key)
        target = make_target(args, seed)
        run_dir = out / f"run-{run:02d}"
        net = target.info.get("network", "?")
        print(f"== run {run}/{args.runs} seed {seed} target {target.name} network {net}"
              f" ({target.info.get('network_why', '')}) -> {run_dir}", flush=True)
        try:
            summary = await run_once(cfg, target, run_dir, run=run,
                                     progress=lambda m: print(f"   {m}", flush=True))
        except Exception as exc:  # a run that could not complete is reported, not fatal
            print(f"   run failed: {type(exc).__name__}: {exc}", flush=True)
            summary = {"run": run, "verdict": "unknown", "ops": 0, "ops_per_second": 0.0,
                       "counts": {"ok": 0, "fail": 0, "info": 0}, "faults": {},
                       "checkers": {}, "error": f"{type(exc).__name__}: {exc}"}
        summaries.append(summary)
        print(f"   verdict {summary['verdict']}: {run_dir / 'timeline.html'}", flush=True)
    print(f"\n{'run':>3} {'verdict':>8} {'ops':>7} {'ok':>6} {'fail':>6} {'info':>5} "
          f"{'ops/s':>7} {'faults':<28} checkers")
    for s in summaries:
        print(_row(s))
    (out / "campaign.json").write_text(json.dumps(
        [{k: s[k] for k in ("run", "verdict", "ops", "counts", "ops_per_second", "faults",
                            "checkers")} for s in summaries], indent=2, default=str))
    print(f"\nreports: {out}")
    return _exit_code([s["verdict"] for s in summaries])


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.cleanup:
        from jepsen_like.nemesis.netns import cleanup_leftovers

        for item in cleanup_leftovers():
            print(f"removed {item}")
        return 0
    if args.check:
        return recheck(args.check, args)
    return asyncio.run(campaign(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
