"""Core throughput benchmark (prints figures; asserts nothing about time).

    python -m tests.core.bench [--nodes 3] [--proposals 200000] [--batch 100] [--size 100]

Drives a cluster of RawNodes over the in-memory harness: each cycle the leader takes
``batch`` proposals, then every node runs one Ready cycle and the network delivers.
Reports proposals committed and applied on every node per second of wall time (the
core's own cost plus the harness's, no disk and no network).
"""

from __future__ import annotations

import argparse
import time

from tests.core.harness import Cluster


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.core.bench")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--proposals", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=100, help="proposals per leader Ready")
    p.add_argument("--size", type=int, default=100, help="payload bytes")
    args = p.parse_args()

    c = Cluster(args.nodes)
    c.elect(1)
    c.stabilize()
    leader = c[1]
    payload = b"x" * args.size
    cycles = 0
    t0 = time.perf_counter()
    sent = 0
    target = c[1].last_index + args.proposals
    while min(c.nodes[n].applied_index for n in c.nodes) < target:
        for _ in range(min(args.batch, args.proposals - sent)):
            leader.propose(payload)
            sent += 1
        c.round()
        cycles += 1
    dt = time.perf_counter() - t0
    print(
        f"{args.nodes} nodes, {args.proposals} proposals of {args.size} B in batches of "
        f"{args.batch}: {dt:.2f} s, {args.proposals / dt:,.0f} proposals/s applied on all "
        f"nodes, {cycles} cycles"
    )


if __name__ == "__main__":
    main()
