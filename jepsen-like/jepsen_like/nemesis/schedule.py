"""Nemeses and their schedule: quiet, fault, heal, quiet, fault, heal, ... then heal all.

A nemesis has ``start`` (inject a fault) and ``stop`` (undo it), each returning details
for the nemesis log. ``run_schedule`` alternates a quiet phase and a fault phase of a
few seconds each, picking nemeses round-robin, until its duration is over; it always
ends by stopping the active fault and healing everything (network healed, every node
resumed and running), so the run can finish with final reads.

The nemesis log (``nemesis.jsonl``) has one JSON object per line: ``time`` (ns since the
run started, the history's clock), ``type`` (``start`` / ``stop`` / ``error`` /
``heal-all``), ``nemesis`` and the details. ``intervals`` pairs starts and stops into
the fault intervals the reports shade (a stop's ``healed_at``, when present, ends the
interval: the corrupt nemesis watches its victim for a while after restarting it).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import storage
from .base import Network, ProcessControl
from .partitions import SHAPES, describe


class NemesisLog:
    """Appends nemesis events to memory and a JSON-lines file, on the history's clock."""

    def __init__(self, path: Path | None, clock: Callable[[], int]) -> None:
        self.clock = clock  # ns since the run started (HistoryRecorder.now)
        self.events: list[dict[str, Any]] = []  # every event so far
        self._file = path.open("w", encoding="utf-8") if path else None

    def append(self, type: str, nemesis: str, *, at: int | None = None,
               **details: Any) -> dict[str, Any]:
        """Log an event at time ``at`` (ns on the clock; default: now)."""
        ev = {"time": self.clock() if at is None else at, "type": type, "nemesis": nemesis,
              **details}
        self.events.append(ev)
        if self._file is not None:
            self._file.write(json.dumps(ev, default=str) + "\n")
            self._file.flush()
        return ev

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True)
class FaultInterval:
    nemesis: str
    start: int  # ns
    stop: int | None  # ns; None if never stopped
    detail: dict[str, Any] = field(default_factory=dict)


def intervals(events: Sequence[dict[str, Any]]) -> list[FaultInterval]:
    """Pair each ``start`` with the next ``stop`` of the same nemesis."""
    open_: dict[str, dict[str, Any]] = {}
    out: list[FaultInterval] = []
    for ev in events:
        name = ev["nemesis"]
        if ev["type"] == "start":
            open_[name] = ev
        elif ev["type"] == "stop" and name in open_:
            st = open_.pop(name)
            detail = {k: v for k, v in st.items() if k not in ("time", "type", "nemesis")}
            out.append(FaultInterval(name, st["time"], ev.get("healed_at", ev["time"]), detail))
    for name, st in open_.items():
        detail = {k: v for k, v in st.items() if k not in ("time", "type", "nemesis")}
        out.append(FaultInterval(name, st["time"], None, detail))
    return sorted(out, key=lambda i: i.start)


@dataclass(slots=True)
class NemesisContext:
    cluster: ProcessControl
    network: Network | None
    rng: random.Random
    log: NemesisLog


class Nemesis(Protocol):
    name: str

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        ...

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        ...


async def _leader_or_random(ctx: NemesisContext) -> tuple[int, bool]:
    leader = await ctx.cluster.leader()
    if leader is not None:
        return leader, True
    return ctx.rng.choice(ctx.cluster.node_ids()), False


class PartitionNemesis:
    """Cut the network in one of ``shapes`` (see partitions.SHAPES); heal on stop."""

    name = "partition"

    def __init__(self, shapes: Sequence[str] = tuple(SHAPES)) -> None:
        unknown = [s for s in shapes if s not in SHAPES]
        if unknown:
            raise ValueError(f"unknown partition shapes {unknown} (known: {list(SHAPES)})")
        self.shapes = list(shapes)  # shapes to pick from

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        if ctx.network is None:
            raise RuntimeError("partition nemesis needs a network (netns or proxy)")
        shape = ctx.rng.choice(self.shapes)
        leader = await ctx.cluster.leader()
        cut = SHAPES[shape](ctx.cluster.node_ids(), ctx.rng, leader)
        await ctx.network.cut(cut)
        return {"shape": shape, "leader": leader, "cut": describe(cut)}

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        if ctx.network is not None:
            await ctx.network.heal()
        return {}


class KillNemesis:
    """kill -9 one node / the leader / a minority / all nodes; restart them on stop."""

    name = "kill"

    def __init__(self, targets: Sequence[str] = ("one", "leader", "minority", "all")) -> None:
        self.targets = list(targets)  # kinds of victim sets to pick from
        self.victims: list[int] = []  # nodes killed by the active fault

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        nodes = ctx.cluster.node_ids()
        target = ctx.rng.choice(self.targets)
        if target == "leader":
            victim, known = await _leader_or_random(ctx)
            self.victims = [victim]
            target = "leader" if known else "one (no leader known)"
        elif target == "minority":
            self.victims = ctx.rng.sample(nodes, (len(nodes) - 1) // 2)
        elif target == "all":
            self.victims = list(nodes)
        else:
            self.victims = [ctx.rng.choice(nodes)]
        for node in self.victims:
            await ctx.cluster.kill(node)
        return {"target": target, "nodes": self.victims}

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        for node in self.victims:
            await ctx.cluster.start(node)
        victims, self.victims = self.victims, []
        return {"restarted": victims}


class PauseNemesis:
    """SIGSTOP the leader or a random node; SIGCONT on stop."""

    name = "pause"

    def __init__(self, targets: Sequence[str] = ("leader", "one")) -> None:
        self.targets = list(targets)  # "leader" and/or "one"
        self.victim: int | None = None  # the paused node

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        target = ctx.rng.choice(self.targets)
        if target == "leader":
            self.victim, known = await _leader_or_random(ctx)
            target = "leader" if known else "one (no leader known)"
        else:
            self.victim = ctx.rng.choice(ctx.cluster.node_ids())
        await ctx.cluster.pause(self.victim)
        return {"target": target, "node": self.victim}

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        victim, self.victim = self.victim, None
        if victim is not None:
            await ctx.cluster.resume(victim)
        return {"node": victim}


class CorruptNemesis:
    """Kill a node, damage its LMDB data file (truncate / bit flips); restart on stop.

    One victim per run (the first one picked), so damage never spreads to a majority.
    On stop the node is restarted and watched for ``watch_seconds``: the log records
    whether it refused to start (its exit code) or kept running.
    """

    name = "corrupt"

    def __init__(self, modes: Sequence[storage.Mode] = storage.MODES,
                 watch_seconds: float = 5.0) -> None:
        self.modes = list(modes)  # damage kinds to pick from
        self.watch_seconds = watch_seconds  # how long to watch a restarted victim
        self.chosen: int | None = None  # the run's victim, picked at the first fault
        self.down = False  # the victim is down, damaged, until stop

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        if self.chosen is None:
            self.chosen = ctx.rng.choice(ctx.cluster.node_ids())
        node = self.chosen
        data_dir = ctx.cluster.data_dir(node)
        if data_dir is None:
            raise RuntimeError(f"node {node} has no data dir to damage")
        await ctx.cluster.kill(node)
        self.down = True
        mode = ctx.rng.choice(self.modes)
        dmg = await asyncio.to_thread(storage.damage, data_dir, mode, ctx.rng)
        return {"node": node, "damage": dmg.to_json()}

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        if self.chosen is None or not self.down:
            return {}
        node, self.down = self.chosen, False
        await ctx.cluster.start(node)
        healed_at = ctx.log.clock()  # the fault interval ends here, not after watching
        deadline = time.monotonic() + self.watch_seconds
        while time.monotonic() < deadline and ctx.cluster.is_running(node):
            await asyncio.sleep(0.1)
        running = ctx.cluster.is_running(node)
        return {"node": node, "healed_at": healed_at,
                "after_restart": "running" if running else "refused to start"}


def _member_nemesis() -> Nemesis:
    from .membership import MemberNemesis  # imports this module: load it late

    return MemberNemesis()


NEMESES: dict[str, Callable[[], Nemesis]] = {
    "partition": PartitionNemesis,
    "kill": KillNemesis,
    "pause": PauseNemesis,
    "corrupt": CorruptNemesis,
    "member": _member_nemesis,
}


def make_nemeses(names: Sequence[str], shapes: Sequence[str] | None = None) -> list[Nemesis]:
    out: list[Nemesis] = []
    for name in names:
        if name not in NEMESES:
            raise ValueError(f"unknown nemesis {name!r} (known: {', '.join(NEMESES)})")
        out.append(PartitionNemesis(shapes) if name == "partition" and shapes
                   else NEMESES[name]())
    return out


async def heal_all(ctx: NemesisContext) -> None:
    """Network healed, every node resumed and running."""
    if ctx.network is not None:
        await ctx.network.heal()
    started = []
    for node in ctx.cluster.node_ids():
        await ctx.cluster.resume(node)
        if not ctx.cluster.is_running(node):
            await ctx.cluster.start(node)
            started.append(node)
    ctx.log.append("heal-all", "all", started=started)


async def run_schedule(nemeses: Sequence[Nemesis], ctx: NemesisContext, *, duration: float,
                       fault_seconds: float = 5.0, quiet_seconds: float = 3.0) -> int:
    """Alternate quiet and fault phases for ``duration`` seconds, then heal all.

    Returns the number of faults injected. A nemesis that raises is logged as an
    ``error`` and the schedule goes on. Cancelling the task still heals.
    """
    deadline = time.monotonic() + duration
    faults = 0
    turn = 0
    active: Nemesis | None = None
    try:
        while nemeses:
            await asyncio.sleep(min(quiet_seconds, max(0.0, deadline - time.monotonic())))
            if time.monotonic() + 0.5 >= deadline:
                break
            nem = nemeses[turn % len(nemeses)]
            turn += 1
            try:
                active = nem
                began = ctx.log.clock()  # a fault starts when its injection starts
                ctx.log.append("start", nem.name, at=began, **await nem.start(ctx))
                faults += 1
                await asyncio.sleep(min(fault_seconds, max(0.0, deadline - time.monotonic())))
                active = None
                ctx.log.append("stop", nem.name, **await nem.stop(ctx))
            except Exception as exc:
                ctx.log.append("error", nem.name, error=f"{type(exc).__name__}: {exc}")
                if active is not None:
                    active = None
                    ctx.log.append("stop", nem.name, **await nem.stop(ctx))
    finally:
        if active is not None:
            ctx.log.append("stop", active.name, **await active.stop(ctx))
        await heal_all(ctx)
    return faults
