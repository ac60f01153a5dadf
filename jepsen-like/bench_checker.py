#!/usr/bin/env python3
"""Benchmark and self-check of the register linearizability checker. Prints figures.

    python jepsen-like/bench_checker.py            # the standard table
    python jepsen-like/bench_checker.py --quick    # smaller shapes

For each shape: a history linearizable by construction (jepsen_like.synth), the time to
check it, then the same history with a provable stale read, and the time to find the
anomaly and its window. Finally, the share of arbitrary read mutations detected (not all
of them are invalid, so this is a rate, not a pass/fail).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jepsen_like.history import pair  # noqa: E402
from jepsen_like.linearizability import check  # noqa: E402
from jepsen_like.synth import random_history, random_result, stale_read  # noqa: E402

SHAPES = [  # (operations, workers, keys, mean latency in units of the mean think time)
    (20_000, 10, 50, 2.0),
    (20_000, 30, 10, 6.0),
    (5_000, 5, 1, 6.0),
    (5_000, 10, 1, 6.0),
    (3_000, 14, 1, 6.0),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller histories")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per key")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    print(f"{'ops':>7} {'workers':>7} {'keys':>5} {'verdict':>8} {'check s':>8} "
          f"{'configs':>9} | {'mutated':>8} {'find s':>7} {'window':>7}")
    for n, workers, keys, latency in SHAPES:
        rng = random.Random(args.seed)
        events = random_history(rng, ops=n // scale, workers=workers, keys=keys,
                                p_info=0.05, p_fail=0.05, mean_latency=latency / 2,
                                mean_gap=0.5)
        t0 = time.perf_counter()
        res = check(pair(events), budget=args.budget)
        dt = time.perf_counter() - t0
        configs = sum(k.configs for k in res.keys)
        mutated = stale_read(events, rng)
        mverdict, mdt, window = "-", 0.0, "-"
        if mutated is not None:
            t0 = time.perf_counter()
            mres = check(pair(mutated), budget=args.budget)
            mdt = time.perf_counter() - t0
            mverdict = mres.verdict
            if mres.anomalies:
                window = str(len(mres.anomalies[0].window_ops))
        print(f"{n // scale:>7} {workers:>7} {keys:>5} {res.verdict:>8} {dt:>8.2f} "
              f"{configs:>9} | {mverdict:>8} {mdt:>7.2f} {window:>7}")
    caught = tried = 0
    for seed in range(200 // scale):
        rng = random.Random(seed)
        events = random_history(rng, ops=100, workers=4, keys=2, p_info=0.1, p_fail=0.05)
        mutated = random_result(events, rng)
        if mutated is None:
            continue
        tried += 1
        caught += check(pair(mutated), budget=args.budget).verdict == "invalid"
    print(f"arbitrary read mutations detected: {caught}/{tried}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
