"""Workers: invoke operations, record every invocation and completion in the history.

``concurrency`` workers run as asyncio tasks until ``duration`` passes. Worker ``w``
starts as process ``w``; when an operation ends in ``info`` it continues as process
``p + concurrency`` (the old operation may still be in flight). Each operation is bounded
by ``op_timeout``; a timeout is an unknown outcome. ``rate`` (operations per second, all
workers together) spaces invocations with a random think time, so histories stay
checkable and the cluster is not simply saturated.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from .client import ClientFactory, DefiniteFailure, KVClient
from .history import EventType, HistoryRecorder
from .workload import Invocation, Workload, perform

_READS = ("read", "read-set")


@dataclass(slots=True)
class ClientStats:
    invoked: int = 0
    ok: int = 0
    fail: int = 0
    info: int = 0


async def invoke(client: KVClient, inv: Invocation, process: int, recorder: HistoryRecorder,
                 workload: Workload, op_timeout: float, stats: ClientStats) -> str:
    """Perform one invocation and record it. Returns the outcome (ok / fail / info)."""
    extra: dict[str, Any] = {}
    if inv.consistency is not None:
        extra["consistency"] = inv.consistency
    if inv.final:
        extra["final"] = True
    recorder.append("invoke", process, inv.f, inv.key, inv.value, **extra)
    stats.invoked += 1
    result_value = None
    error: str | None = None
    outcome: EventType
    try:
        effect, result = await asyncio.wait_for(perform(client, inv), op_timeout)
    except DefiniteFailure as exc:
        outcome, error = "fail", str(exc) or type(exc).__name__
    except Exception as exc:  # unknown outcome: timeouts, lost connections, anything
        outcome = "fail" if inv.f in _READS else "info"
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    else:
        outcome, error = ("ok", None) if effect else ("fail", "compare failed")
        result_value = result
    value = result_value if inv.f in _READS else inv.value
    recorder.append(outcome, process, inv.f, inv.key, value, error=error, **extra)
    setattr(stats, outcome, getattr(stats, outcome) + 1)
    workload.observe(inv, outcome, result_value)
    return outcome


async def run_workers(factory: ClientFactory, workload: Workload, recorder: HistoryRecorder,
                      *, concurrency: int, duration: float, op_timeout: float = 2.0,
                      rate: float | None = 200.0, seed: int = 0) -> ClientStats:
    """Run the workload for ``duration`` seconds; returns totals. Never raises for a
    failing operation (that is recorded); raises only if a client cannot be made."""
    stats = ClientStats()
    deadline = time.monotonic() + duration
    think = concurrency / rate if rate else 0.0  # mean pause between a worker's ops
    clients = [await factory(w) for w in range(concurrency)]

    async def worker(w: int) -> None:
        rng = random.Random(seed * 1_000_003 + w)
        process = w
        while time.monotonic() < deadline:
            if think:
                await asyncio.sleep(min(rng.expovariate(1 / think),
                                        max(0.0, deadline - time.monotonic())))
                if time.monotonic() >= deadline:
                    break
            inv = workload.next(w, rng)
            if await invoke(clients[w], inv, process, recorder, workload, op_timeout,
                            stats) == "info":
                process += concurrency

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        for c in {id(c): c for c in clients}.values():
            await c.close()
    return stats


async def final_reads(factory: ClientFactory, workload: Workload, recorder: HistoryRecorder,
                      *, first_process: int, op_timeout: float = 5.0, attempts: int = 10,
                      deadline: float = 60.0, stats: ClientStats | None = None) -> bool:
    """Perform the workload's final reads, each retried (as a new process after a
    failure) until ok or ``attempts`` run out, all within ``deadline`` seconds. True if
    every final read succeeded."""
    stats = stats or ClientStats()
    client = await factory(-1)
    process = first_process
    all_ok = True
    give_up = time.monotonic() + deadline
    try:
        for inv in workload.final_reads():
            for _ in range(attempts):
                if time.monotonic() > give_up:
                    break
                outcome = await invoke(client, inv, process, recorder, workload, op_timeout,
                                       stats)
                process += 1
                if outcome == "ok":
                    break
            else:
                all_ok = False
    finally:
        await client.close()
    return all_ok
