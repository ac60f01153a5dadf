#!/usr/bin/env python3
"""Benchmark the Raft log store's hot path: LmdbLogStore.save() (group commit).

For batch sizes 1, 8, 64 and 512 entries of 100 bytes, each save() carries one Ready's
worth (the entries plus a hard state) in one durable LMDB transaction, and the script
prints entries/s and durable commits ("fsyncs")/s. For reference it also times a bare
durable LMDB transaction of 64 small puts, the read path (term(), entries()) and a
compaction. Every phase is bounded by --seconds and by a count.

    .venv/bin/python scripts/bench_storage.py [--seconds 2] [--dir DIR]

--dir should be on the disk the node's data dir lives on (fsync cost is the disk's).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lmdb  # noqa: E402

from kvraft.core.types import Entry, HardState, SnapshotMeta  # noqa: E402
from kvraft.storage.lmdb_log import LmdbLogStore  # noqa: E402

ENTRY_BYTES = 100
MAX_SAVES = 50_000


def bench_save(path: Path, batch: int, seconds: float) -> tuple[float, float, int, float]:
    """(entries/s, commits/s, saves, CPU µs per save) for save() of ``batch`` entries at a
    time. CPU time includes building the Entry objects, as the core would."""
    store = LmdbLogStore(path / f"save-{batch}", map_size=8 << 30)
    data = os.urandom(ENTRY_BYTES)
    index, saves = 1, 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    try:
        while saves < MAX_SAVES and time.perf_counter() < deadline:
            ents = [Entry(1, i, data=data) for i in range(index, index + batch)]
            index += batch
            store.save(entries=ents, hard_state=HardState(1, 1, index - 1))
            saves += 1
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    finally:
        store.close()
    return (index - 1) / elapsed, saves / elapsed, saves, cpu / saves * 1e6


def bench_raw_lmdb(path: Path, seconds: float) -> float:
    """Durable LMDB write transactions of 64 small puts per second, no store on top."""
    env = lmdb.open(str(path / "raw"), map_size=1 << 30, sync=True, metasync=True)
    key, n = 0, 0
    start = time.perf_counter()
    try:
        while n < MAX_SAVES and time.perf_counter() < start + seconds:
            with env.begin(write=True) as txn:
                for _ in range(64):
                    key += 1
                    txn.put(key.to_bytes(8, "big"), b"x" * ENTRY_BYTES, append=True)
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        env.close()


def bench_reads(path: Path, seconds: float) -> None:
    """term() and entries() rates on a 100k-entry log with 100 term changes; compaction."""
    store = LmdbLogStore(path / "reads", map_size=8 << 30)
    try:
        data = os.urandom(ENTRY_BYTES)
        for b in range(100):
            ents = [Entry(b + 1, i, data=data) for i in range(b * 1000 + 1, b * 1000 + 1001)]
            store.save(entries=ents)
        last = store.last_index()
        n, start = 0, time.perf_counter()
        while n < 2_000_000 and time.perf_counter() < start + seconds:
            for i in range(1, last, 97):
                store.term(i)
            n += len(range(1, last, 97))
        rate = n / (time.perf_counter() - start)
        print(f"  term():                        {rate:>12,.0f} calls/s")
        n, k, start = 0, 0, time.perf_counter()
        while n < 2_000_000 and time.perf_counter() < start + seconds:
            lo = 1 + (k * 7919) % (last - 64)
            n += len(store.entries(lo, lo + 64))
            k += 1
        rate = n / (time.perf_counter() - start)
        print(f"  entries(lo, lo+64):            {rate:>12,.0f} entries/s read")
        t = time.perf_counter()
        store.compact(SnapshotMeta(90_000, store.term(90_000)))
        print(f"  compact 90,000 entries:        {time.perf_counter() - t:>12.3f} s")
        store.close()
        t = time.perf_counter()
        store = LmdbLogStore(path / "reads", map_size=8 << 30)
        print(f"  reopen, verify 10,000 entries:  {time.perf_counter() - t:>12.3f} s")
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--dir", type=Path, default=None, help="where to create the stores")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kvraft-bench-", dir=args.dir) as tmp:
        path = Path(tmp)
        print(f"LmdbLogStore.save() with {ENTRY_BYTES}-byte entries + hard state, in {tmp}")
        print("  (one save = one LMDB write txn = one fdatasync + one O_DSYNC meta-page write)")
        head = ("batch", "entries/s", "fsyncs/s", "saves", "cpu us/save")
        print("  {:>5}  {:>12}  {:>10}  {:>7}  {:>11}".format(*head))
        for batch in (1, 8, 64, 512):
            eps, cps, saves, cpu_us = bench_save(path, batch, args.seconds)
            print(f"  {batch:>5}  {eps:>12,.0f}  {cps:>10,.0f}  {saves:>7}  {cpu_us:>11,.0f}")
        print("reference: bare durable LMDB txn of 64 puts")
        print(f"  {bench_raw_lmdb(path, args.seconds):,.0f} txns/s")
        print("reads and maintenance")
        bench_reads(path, args.seconds)


if __name__ == "__main__":
    main()
