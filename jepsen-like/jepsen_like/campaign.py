"""One run of a campaign: workload + nemesis schedule -> heal -> final reads -> check -> report.

A ``Target`` is what a run acts on: a client factory, a ``ProcessControl``, an optional
``Network``, and hooks to start and stop it. ``targets.py`` builds targets for the fakes
and for a real kvraft cluster. ``run_once`` writes the run folder:

    history.jsonl  nemesis.jsonl  history.porcupine.json  summary.json
    timeline.html  latency.svg  throughput.svg  nodes/ (node logs, real clusters)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .client import ClientFactory, Consistency
from .execute import ClientStats, final_reads, run_workers
from .export import write_porcupine
from .history import HistoryRecorder, pair
from .nemesis.base import Network, ProcessControl
from .nemesis.schedule import NemesisContext, NemesisLog, intervals, make_nemeses, run_schedule
from .report import write_report
from .workload import make_workload


@dataclass(slots=True)
class RunConfig:
    workload: str = "register"  # register | set
    nemeses: list[str] = field(default_factory=lambda: ["partition", "kill", "pause"])
    shapes: list[str] | None = None  # partition shapes; None = all
    time: float = 60.0  # seconds of workload (faults run during it)
    concurrency: int = 10  # workers
    rate: float = 200.0  # target invocations per second, all workers together
    op_timeout: float = 2.0  # seconds before an operation's outcome is unknown
    consistency: Consistency = "linearizable"  # level of the workload's reads
    fault_seconds: float = 4.0  # length of a fault phase
    quiet_seconds: float = 3.0  # length of a quiet phase between faults
    budget: float = 10.0  # checker seconds per key
    seed: int = 0
    group_size: int = 5  # register workload: clients per key
    ops_per_key: int = 300  # register workload: invocations per key
    final_attempts: int = 20  # tries per final read (the cluster may still be recovering)
    final_seconds: float = 60.0  # bound on all final reads together

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Target:
    name: str
    factory: ClientFactory
    cluster: ProcessControl
    network: Network | None = None
    start: Callable[[Path], Awaitable[None]] | None = None  # bring up (gets the run dir)
    stop: Callable[[], Awaitable[None]] | None = None  # tear down, always called
    settle: Callable[[], Awaitable[None]] | None = None  # after heal, before final reads
    info: dict[str, Any] = field(default_factory=dict)  # e.g. which network mechanism


async def run_once(config: RunConfig, target: Target, run_dir: Path, *, run: int = 0,
                   progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Perform one run and write its folder; return the summary (see report.summarize)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    workload = make_workload(config.workload, concurrency=config.concurrency,
                             consistency=config.consistency, group_size=config.group_size,
                             ops_per_key=config.ops_per_key)
    stats = ClientStats()
    final_ok = False
    t0 = time.monotonic()
    recorder: HistoryRecorder | None = None
    nlog: NemesisLog | None = None
    try:
        if target.start is not None:
            await target.start(run_dir)
        # time zero of the history and the nemesis log: the cluster is up
        recorder = HistoryRecorder(run_dir / "history.jsonl")
        nlog = NemesisLog(run_dir / "nemesis.jsonl", recorder.now)
        progress(f"cluster up ({target.name}); workload {config.workload} for "
                 f"{config.time:g}s, nemeses {','.join(config.nemeses) or 'none'}")
        ctx = NemesisContext(target.cluster, target.network, rng, nlog)
        schedule = asyncio.create_task(run_schedule(
            make_nemeses(config.nemeses, config.shapes), ctx, duration=config.time,
            fault_seconds=config.fault_seconds, quiet_seconds=config.quiet_seconds))
        try:
            stats = await run_workers(target.factory, workload, recorder,
                                      concurrency=config.concurrency, duration=config.time,
                                      op_timeout=config.op_timeout, rate=config.rate,
                                      seed=config.seed)
        except BaseException:
            schedule.cancel()  # still heals (run_schedule's finally)
            await asyncio.gather(schedule, return_exceptions=True)
            raise
        faults = await schedule  # ends with its duration, healed
        progress(f"workload done: {stats.invoked} ops; {faults} faults; healed")
        if target.settle is not None:
            await target.settle()
        first = 1 + max((ev.process for ev in recorder.events()), default=0)
        final_ok = await final_reads(target.factory, workload, recorder, first_process=first,
                                     op_timeout=max(config.op_timeout, 5.0),
                                     attempts=config.final_attempts,
                                     deadline=config.final_seconds, stats=stats)
        progress(f"final reads {'ok' if final_ok else 'INCOMPLETE'}")
    finally:
        if recorder is not None:
            recorder.close()
        if nlog is not None:
            nlog.close()
        if target.stop is not None:
            await target.stop()
    assert recorder is not None and nlog is not None
    seconds = time.monotonic() - t0
    events = recorder.events()
    ops = pair(events)
    write_porcupine(ops, run_dir / "history.porcupine.json")
    progress(f"checking {len(ops)} operations")
    checks = workload.check(ops, config.budget)
    anomalies = [a for res in checks.values() for a in res.get("anomalies", [])]
    span = max((ev.time for ev in events), default=0) / 1e9
    workload_ops = sum(1 for op in ops if op.call_time <= config.time * 1e9 and not op.final)
    meta = {"workload_ops_per_second": round(workload_ops / config.time, 2) if config.time
            else 0.0,"run": run, "target": target.name, "workload": config.workload,
            "nemesis": ",".join(config.nemeses) or "none", "config": config.to_json(),
            "final_reads_ok": final_ok, "wall_seconds": round(seconds, 2), **target.info}
    return write_report(run_dir, ops, intervals(nlog.events), span, config.concurrency,
                        checks, anomalies, meta)
