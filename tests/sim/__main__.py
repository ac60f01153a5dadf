"""Seed runner: many random schedules, each replayable from its seed.

    python -m tests.sim --seeds 1000 --nodes 5 [--steps 400] [--start 0]
    python -m tests.sim --replay SEED --nodes 5 [--steps N] -v

Prints every failing seed with the command that replays it, then a summary (schedules,
steps, wall time, what happened). Exit status 1 if any schedule failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.sim.schedule import run_schedule


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=100, help="how many schedules (default 100)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--nodes", type=int, default=3, help="initial voters (default 3)")
    p.add_argument("--steps", type=int, default=400, help="steps per schedule (default 400)")
    p.add_argument("--replay", type=int, metavar="SEED", help="run one seed and trace it")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step")
    p.add_argument("--stop", action="store_true", help="stop at the first failure")
    p.add_argument(
        "--no-self-removal",
        dest="self_removal",
        action="store_false",
        help="leaders never remove or demote themselves (skips a known open bug)",
    )
    args = p.parse_args(argv)

    if args.replay is not None:
        trace = print if args.verbose else None
        out = run_schedule(args.replay, args.nodes, args.steps, trace, args.self_removal)
        if out.ok:
            print(f"seed {args.replay}: ok ({out.steps} steps) {out.counts}")
            return 0
        print(f"seed {args.replay}: FAILED at step {out.steps} ({out.failed_action})")
        print(out.error)
        return 1

    t0 = time.perf_counter()
    failures = 0
    steps = 0
    live_ticks: list[int] = []
    slowest = (0, -1)  # (ticks, seed) of the slowest heal
    totals: Counter[str] = Counter()
    for seed in range(args.start, args.start + args.seeds):
        out = run_schedule(seed, args.nodes, args.steps, None, args.self_removal)
        steps += out.steps
        live_ticks += out.liveness_ticks
        slowest = max([slowest] + [(t, seed) for t in out.liveness_ticks])
        totals.update(out.counts)
        if not out.ok:
            failures += 1
            last = (out.error or "").splitlines()[-1]
            print(f"FAIL seed {seed} at step {out.steps} ({out.failed_action}): {last}")
            flag = "" if args.self_removal else " --no-self-removal"
            print(
                f"  replay: python -m tests.sim --replay {seed} --nodes {args.nodes} "
                f"--steps {out.steps}{flag} -v"
            )
            if args.stop:
                break
    dt = time.perf_counter() - t0
    ran = seed - args.start + 1
    print(
        f"{ran} schedules x {args.nodes} nodes, {steps} steps in {dt:.1f}s "
        f"({steps / max(dt, 1e-9):.0f} steps/s); {failures} failed"
    )
    if live_ticks:
        print(
            f"liveness: {len(live_ticks)} heals, ticks to leader+commit: "
            f"max {slowest[0]} (seed {slowest[1]}), "
            f"mean {sum(live_ticks) / len(live_ticks):.1f}"
        )
    print("totals: " + ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
