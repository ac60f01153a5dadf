"""The closed-loop load engine behind ``kvraft bench``: workloads, workers, statistics.

``concurrency`` workers share one :class:`~kvraft.client.Client` (so its requests are
multiplexed over one Batch stream per node, as an application's would be); each keeps one
operation in flight, issuing the next as soon as the previous one finished. An operation
counts if it completes inside the measurement window (after ``warmup``); its latency is
taken with the monotonic clock and percentiles are exact (every sample is kept). A failed
operation is counted by error type and the worker pauses 1 ms (no hot spin against a dead
cluster). The whole run is bounded by ``warmup + duration`` plus one operation timeout.

Workloads: ``put`` (random keys of the keyspace), ``get`` (at ``consistency``), ``mixed``
(``read_ratio`` gets, the rest puts) and ``txn`` (a compare-and-set: if the key's version
is still what we last saw, write it; else read it). Keys are ``<prefix>%08d``.
"""

from __future__ import annotations

import array
import asyncio
import math
import random
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kvraft.client import Client, ClientError, Cmp, Consistency, Op, RangeResult

WORKLOADS = ("put", "get", "mixed", "txn")
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to run; every field is validated by :meth:`check`."""

    workload: str = "put"  # one of WORKLOADS
    concurrency: int = 64  # operations in flight; >= 1
    duration: float = 10.0  # measured seconds; > 0
    warmup: float = 1.0  # unmeasured seconds before the window; >= 0
    value_size: int = 100  # bytes per written value; >= 1
    keyspace: int = 100_000  # distinct keys; >= 1
    consistency: Consistency = Consistency.LINEARIZABLE  # for get/mixed reads
    read_ratio: float = 0.5  # mixed: fraction of gets, in [0, 1]
    key_prefix: bytes = b"bench/"  # keys are key_prefix + %08d
    seed: int = 1  # key choice and value bytes are reproducible per seed

    def check(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}; choose {', '.join(WORKLOADS)}")
        if self.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if self.duration <= 0 or self.warmup < 0:
            raise ValueError("--duration must be positive and --warmup not negative")
        if self.value_size < 1 or self.keyspace < 1:
            raise ValueError("--value-size and --keyspace must be at least 1")
        if not 0.0 <= self.read_ratio <= 1.0:
            raise ValueError("--read-ratio must be between 0 and 1")

    def key(self, i: int) -> bytes:
        return b"%s%08d" % (self.key_prefix, i)


@dataclass
class Window:
    """What the workers recorded inside the measurement window."""

    latencies: array.array[int] = field(default_factory=lambda: array.array("q"))  # ns
    errors: dict[str, int] = field(default_factory=dict)  # error type -> count
    elapsed: float = 0.0  # length of the window in seconds (set at the end)
    cpu_seconds: float = 0.0  # this process's user+system CPU inside the window

    def error(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(sorted_ns: list[int], p: float) -> float | None:
    """The exact p-quantile (nearest rank) of sorted nanosecond samples, in ms."""
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, max(0, math.ceil(p * len(sorted_ns)) - 1))
    return round(sorted_ns[i] / 1e6, 3)


def summary(spec: LoadSpec, w: Window) -> dict[str, object]:
    """The result as a flat-ish dict (the --json output)."""
    lat = sorted(w.latencies)
    ops = len(lat)
    window = w.elapsed or spec.duration
    return {
        "workload": spec.workload,
        "consistency": spec.consistency.name.lower() if spec.workload in ("get", "mixed")
        else None,
        "read_ratio": spec.read_ratio if spec.workload == "mixed" else None,
        "concurrency": spec.concurrency,
        "duration_s": round(window, 3),
        "value_size": spec.value_size,
        "keyspace": spec.keyspace,
        "ops": ops,
        "ops_per_s": round(ops / window, 1),
        "latency_ms": {
            "p50": percentile(lat, 0.50),
            "p90": percentile(lat, 0.90),
            "p99": percentile(lat, 0.99),
            "p999": percentile(lat, 0.999),
            "max": round(lat[-1] / 1e6, 3) if lat else None,
            "mean": round(sum(lat) / ops / 1e6, 3) if ops else None,
        },
        "errors": sum(w.errors.values()),
        "error_kinds": dict(w.errors),
        "client_cpu_s": round(w.cpu_seconds, 3),
        "client_cpu_cores": round(w.cpu_seconds / window, 3),
    }


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _operation(spec: LoadSpec, client: Client, rng: random.Random,
               value: bytes) -> Callable[[], Awaitable[object]]:
    """One worker's next-operation function for the workload."""
    keyspace, key, level = spec.keyspace, spec.key, spec.consistency
    versions: dict[bytes, int] = {}  # txn: the version this worker last saw per key

    async def put() -> object:
        return await client.put(key(rng.randrange(keyspace)), value)

    async def get() -> object:
        return await client.get(key(rng.randrange(keyspace)), consistency=level)

    async def mixed() -> object:
        return await (get() if rng.random() < spec.read_ratio else put())

    async def txn() -> object:
        k = key(rng.randrange(keyspace))
        seen = versions.get(k, 0)
        r = await (client.txn().if_(Cmp.version(k) == seen)
                   .then(Op.put(k, value)).else_(Op.get(k)).commit())
        if r.succeeded:
            versions[k] = seen + 1
        else:
            got = r.responses[0] if r.responses else None
            kvs = got.kvs if isinstance(got, RangeResult) else []
            versions[k] = kvs[0].version if kvs else 0
        return r

    return {"put": put, "get": get, "mixed": mixed, "txn": txn}[spec.workload]


async def fill(client: Client, spec: LoadSpec, concurrency: int = 64) -> int:
    """Write every key of the keyspace once (before read workloads); returns how many
    writes failed."""
    value = random.Random(spec.seed).randbytes(spec.value_size)
    keys = iter(range(spec.keyspace))
    failed = 0

    async def writer() -> None:
        nonlocal failed
        for i in keys:
            try:
                await client.put(spec.key(i), value)
            except ClientError:
                failed += 1

    await asyncio.gather(*(writer() for _ in range(min(concurrency, spec.keyspace))))
    return failed


async def run(client: Client, spec: LoadSpec,
              progress: Callable[[float, Window], None] | None = None) -> Window:
    """Drive ``client`` with ``spec``; ``progress(seconds_into_window, window)`` is called
    about once a second during the window (for a TTY display)."""
    spec.check()
    clock = time.monotonic_ns
    start = clock()
    meas_start = start + int(spec.warmup * NS)
    meas_end = meas_start + int(spec.duration * NS)
    window = Window()
    lat = window.latencies
    value = random.Random(spec.seed).randbytes(spec.value_size)

    async def worker(wid: int) -> None:
        op = _operation(spec, client, random.Random(spec.seed * 100_003 + wid), value)
        while True:
            t0 = clock()
            if t0 >= meas_end:
                return
            try:
                await op()
            except (ClientError, ValueError) as exc:
                if meas_start <= clock() <= meas_end:
                    window.error(exc)
                await asyncio.sleep(0.001)
                continue
            t1 = clock()
            if meas_start <= t1 <= meas_end:
                lat.append(t1 - t0)

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, (meas_start - clock()) / NS))
        cpu0, t0 = _cpu(), clock()
        while (now := clock()) < meas_end:
            await asyncio.sleep(min(1.0, (meas_end - now) / NS))
            if progress is not None and clock() < meas_end:
                progress((clock() - t0) / NS, window)
        window.cpu_seconds = _cpu() - cpu0
        window.elapsed = (clock() - t0) / NS

    await asyncio.gather(sampler(), *(worker(i) for i in range(spec.concurrency)))
    return window
