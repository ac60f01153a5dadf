#!/usr/bin/env python3
"""Benchmark of the KV state machine and its snapshots; prints figures, asserts nothing.

    .venv/bin/python scripts/bench_kv.py [--keys 100000] [--batches 300] [--value-bytes 100]

1. apply: batches of 64 puts (each under a client session), one durable LMDB transaction
   per batch, in the node's real environment (LmdbLogStore: sync + metasync) -> entries/s;
2. point reads through KvStateMachine.range -> gets/s;
3. snapshot of --keys keys written while apply goes on in another thread, then restored
   into a fresh store -> MB/s and peak traced Python memory for each.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvraft._pb.kvraft.v1 import kv_pb2 as pb  # noqa: E402
from kvraft.core.types import Entry  # noqa: E402
from kvraft.kv import KvStateMachine, encode_command  # noqa: E402
from kvraft.storage.lmdb_log import LmdbLogStore  # noqa: E402
from kvraft.storage.snapshot import SnapshotDir, restore  # noqa: E402
from kvraft.storage.state import LmdbStateStore  # noqa: E402
from kvraft.storage.state_base import KeyValue, StatePosition  # noqa: E402

BATCH = 64


class Node:
    def __init__(self, root: Path) -> None:
        self.log = LmdbLogStore(root / "raft")
        self.store = LmdbStateStore(self.log.env)
        self.machine = KvStateMachine(self.store, SnapshotDir(root / "snap"))
        self.index = self.machine.applied()[0]
        self.seq = 0

    def batch(self, value: bytes, keyspace: int) -> list[Entry]:
        out = []
        for _ in range(BATCH):
            self.index += 1
            self.seq += 1
            req = pb.PutRequest(key=b"key/%08d" % (self.seq % keyspace), value=value)
            session = pb.Session(client_id=1 + self.seq % 64, seq=self.seq)
            data = encode_command(req, time_ms=self.index, session=session)
            out.append(Entry(term=1, index=self.index, data=data))
        return out


def bench_apply(node: Node, batches: int, value: bytes) -> None:
    prepared = [node.batch(value, 50_000) for _ in range(batches)]
    t0 = time.perf_counter()
    for entries in prepared:
        node.machine.apply(entries)
    dt = time.perf_counter() - t0
    n = batches * BATCH
    print(
        f"apply: {n} puts in batches of {BATCH}: {n / dt:,.0f} entries/s, "
        f"{batches / dt:,.0f} durable txns/s ({dt / batches * 1e3:.2f} ms per batch)"
    )


def bench_reads(node: Node, count: int) -> None:
    reqs = [pb.RangeRequest(key=b"key/%08d" % (i * 7 % 50_000)) for i in range(count)]
    t0 = time.perf_counter()
    for r in reqs:
        node.machine.range(r)
    dt = time.perf_counter() - t0
    print(f"reads: {count} point gets: {count / dt:,.0f} gets/s")


def bench_snapshot(root: Path, keys: int, value_bytes: int) -> None:
    node = Node(root / "snapnode")
    value = b"s" * value_bytes
    node.store.replace(
        StatePosition(index=node.index, term=1, revision=1),
        (KeyValue(b"big/%09d" % i, value, 1, 1, 1) for i in range(keys)),
        [],
    )
    stop = threading.Event()
    applied = [0]

    def writer() -> None:
        while not stop.is_set() and applied[0] < 10_000:
            node.machine.apply(node.batch(b"w" * 100, 1000))
            applied[0] += 1

    t = threading.Thread(target=writer)
    t.start()
    t0 = time.perf_counter()
    info = node.machine.write_snapshot()
    dt_write = time.perf_counter() - t0
    stop.set()
    t.join()
    mb = info.size_bytes / 1e6
    print(
        f"snapshot write: {info.keys:,} keys, {mb:.1f} MB in {dt_write:.2f}s = "
        f"{mb / dt_write:.1f} MB/s ({info.keys / dt_write:,.0f} keys/s) while "
        f"{applied[0]} apply batches of {BATCH} ran in another thread"
    )
    other = Node(root / "restored")
    t0 = time.perf_counter()
    restore(other.store, info.path)
    dt_restore = time.perf_counter() - t0
    print(
        f"snapshot restore: {mb / dt_restore:.1f} MB/s ({info.keys / dt_restore:,.0f} keys/s, "
        "one durable txn)"
    )
    # memory, measured in separate passes (tracemalloc slows Python down several times)
    tracemalloc.start()
    node.machine.write_snapshot()
    _, write_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    restore(other.store, info.path)
    _, restore_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"peak traced Python memory for {mb:.1f} MB of state: write {write_peak / 1e6:.2f} MB, "
        f"restore {restore_peak / 1e6:.2f} MB"
    )
    node.log.close()
    other.log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--value-bytes", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvraft-bench-kv-") as tmp:
        root = Path(tmp)
        node = Node(root / "node")
        bench_apply(node, args.batches, b"v" * args.value_bytes)
        bench_reads(node, 50_000)
        node.log.close()
        bench_snapshot(root, args.keys, args.value_bytes)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the benchmark process: {rss:.0f} MB (includes LMDB pages mapped)")


if __name__ == "__main__":
    main()
