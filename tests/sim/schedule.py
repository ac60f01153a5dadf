"""Random schedules from one seed: the engine of the seed runner (``python -m tests.sim``).

A schedule draws the cluster's knobs (pre-vote, check-quorum, flow-control limits, a
bounded-delay network or not, clock drift or not) and then ``steps`` actions, each
chosen with fixed weights from the state of the cluster. Every random choice comes from
``random.Random(seed)``, so ``run_schedule(seed, ...)`` replays exactly; with ``trace``
it prints every step.

Every ``CONVERGE_EVERY`` steps and at the end the schedule heals everything and requires
liveness (``liveness.converge``). Any exception -- a SafetyViolation, a LivenessFailure, a
ValueError from the store rejecting a write, an AssertionError inside the core -- fails
the schedule at that step.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from kvraft.core.types import ConfChangeType, EntryType
from tests.sim.cluster import Cluster, SimOptions
from tests.sim.liveness import converge

CONVERGE_EVERY = 250
"""Heal and require liveness every this many steps, and after the last step (a fixed
period, so a schedule cut short with --steps N replays the first N steps exactly)."""

# (action, weight). Weights favour what makes progress; faults are rarer.
WEIGHTS: tuple[tuple[str, float], ...] = (
    ("tick", 10),
    ("tick_one", 1.5),
    ("campaign", 0.3),
    ("deliver", 34),
    ("ready_stage", 22),
    ("drain", 8),
    ("propose", 8),
    ("read", 3),
    ("drop", 2),
    ("duplicate", 1.5),
    ("partition", 0.6),
    ("cut_one_way", 0.6),
    ("stall", 0.4),
    ("release", 1.0),
    ("heal", 1.2),
    ("crash", 0.6),
    ("bounce", 0.6),
    ("restart", 1.5),
    ("snapshot", 1.2),
    ("transfer", 0.6),
    ("conf_change", 1.0),
)
# Actions that need something to act on: (action, what it needs).
_NEEDS = {
    "deliver": "messages",
    "drop": "messages",
    "duplicate": "messages",
    "restart": "down",
    "release": "stalled",
    "propose": "leader",
    "read": "leader",
    "transfer": "leader",
    "conf_change": "leader",
}


@dataclass(slots=True)
class Outcome:
    seed: int
    nodes: int
    steps: int
    """Steps run (the failing step included)."""
    error: str | None = None
    """None if the schedule passed; else the failure, with its traceback."""
    failed_action: str = ""
    liveness_ticks: list[int] = field(default_factory=list)
    """Ticks each converge() needed."""
    counts: dict[str, int] = field(default_factory=dict)
    """What happened: leaders elected, entries applied, reads served, ..."""

    @property
    def ok(self) -> bool:
        return self.error is None


def random_options(rng: random.Random, nodes: int) -> SimOptions:
    bounded = rng.random() < 0.3
    opts = SimOptions(
        nodes=nodes,
        election_ticks=rng.choice((4, 6, 10)),
        pre_vote=rng.random() < 0.8,
        check_quorum=bounded or rng.random() < 0.8,
        max_entries_per_msg=rng.choice((1, 3, 256)),
        max_inflight_msgs=rng.choice((1, 4, 256)),
        max_bytes_per_msg=rng.choice((64, 1 << 20)),
        max_delay_ticks=2 if bounded else None,
    )
    # Lease reads with unbounded delays: answers to heartbeats may arrive very late.
    if not bounded and opts.check_quorum and rng.random() < 0.4:
        opts = replace(opts, no_drift=True)
    return opts


class Schedule:
    """One random schedule over one cluster."""

    def __init__(
        self,
        seed: int,
        nodes: int,
        trace: Callable[[str], None] | None = None,
        self_removal: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.opts = random_options(self.rng, nodes)
        # drawn apart from self.rng, so that every seed keeps the actions it had before
        self.opts = replace(self.opts, lazy_commit=random.Random(~seed).random() < 0.5)
        self.cluster = Cluster(self.opts, seed, trace)
        self.trace = trace
        self.self_removal = self_removal
        """False: a leader never removes or demotes itself (to look for other bugs while
        that known one, see test_scenarios.py, is open)."""

    def _node(self) -> int:
        return self.rng.choice(self.cluster.ids())

    def _leader_or_any(self) -> int:
        leaders = self.cluster.leaders()
        if leaders and self.rng.random() < 0.85:
            return self.rng.choice(leaders).id
        return self._node()

    def pick(self) -> str:
        """Choose an action, by weight, among those that have something to act on
        (actions on a leader also run now and then without one)."""
        c = self.cluster
        have = {
            "messages": bool(c.net.inflight),
            "down": any(not n.alive for n in c.nodes.values()),
            "stalled": bool(c.net.stalled),
            "leader": bool(c.leaders()) or self.rng.random() < 0.1,
        }
        names = [a for a, _ in WEIGHTS if have.get(_NEEDS.get(a, ""), True)]
        weights = [w for a, w in WEIGHTS if have.get(_NEEDS.get(a, ""), True)]
        if not c.leaders() and not c.net.inflight:  # let time pass while nothing happens
            weights[names.index("tick")] *= 3
        if c.opts.lease_reads and "read" in names:
            weights[names.index("read")] *= 3
        return self.rng.choices(names, weights)[0]

    def _busy_node(self) -> int:
        """A node with a Ready in progress or to take (any node if none)."""
        busy = [
            n.id
            for n in self.cluster.nodes.values()
            if n.raw is not None and (n.pending is not None or n.raw.has_ready())
        ]
        return self.rng.choice(busy) if busy else self._node()

    def do(self, action: str) -> str:
        """Run one action; returns its description (for the trace)."""
        c, rng = self.cluster, self.rng
        if action == "tick":
            return c.tick_all()
        if action == "tick_one":
            if c.opts.no_drift or c.opts.max_delay_ticks is not None:  # no clock drift
                return c.tick_all()
            n = self._node()
            return f"n{n} {c.tick(n)}"
        if action == "campaign":
            n = self._node()
            return f"n{n} {c.campaign(n)}"
        if action == "deliver":
            i = rng.randrange(len(c.net.inflight))
            if rng.random() < 0.7:  # mostly FIFO per link, like a stream
                m = c.net.inflight[i].msg
                oldest = c.net.oldest_index(m.src, m.dst)
                i = i if oldest is None else oldest
            return c.deliver(i)
        if action == "ready_stage":
            n = self._busy_node()
            return f"n{n} {c.step_ready(n, apply_batch=rng.randint(1, 4))}"
        if action == "drain":
            n = self._busy_node()
            return f"n{n} drained {c.drain(n)} readys"
        if action == "propose":
            n = self._leader_or_any()
            return f"n{n} {c.propose(n)[0]}"
        if action == "read":
            n = self._leader_or_any()
            return f"n{n} {c.read_index(n, lease=rng.random() < 0.5)}"
        if action == "drop":
            return c.drop(rng.randrange(1 << 20))
        if action == "duplicate":
            return c.duplicate(rng.randrange(1 << 20))
        if action == "partition":
            ids = c.ids()
            side = [i for i in ids if rng.random() < 0.5]
            return c.partition([side, [i for i in ids if i not in side]])
        if action == "cut_one_way":
            a, b = rng.sample(c.ids(), 2)
            return c.cut_one_way(a, b)
        if action == "stall":  # e.g. the leader's streams go down; answers queue
            if c.opts.max_delay_ticks is not None:
                return "no stall (bounded delays)"
            n = self._leader_or_any() if rng.random() < 0.7 else self._node()
            return c.stall(n)
        if action == "release":  # some queues drain, late; new messages wait again
            src, dst = rng.choice(sorted(c.net.stalled))
            inbound = rng.random() < 0.5
            return c.release(dst if inbound else src, inbound=inbound)
        if action == "heal":
            return c.heal()
        if action == "crash":
            n = self._leader_or_any() if rng.random() < 0.5 else self._node()
            return f"n{n} {c.crash(n)}"
        if action == "bounce":  # a crash and an immediate restart (a supervisor)
            n = self._leader_or_any() if rng.random() < 0.3 else self._node()
            return f"n{n} {c.crash(n)}; {c.restart(n)}"
        if action == "restart":
            down = [n.id for n in c.nodes.values() if not n.alive]
            if not down:
                return "nothing down"
            n = rng.choice(down)
            return f"n{n} {c.restart(n)}"
        if action == "snapshot":
            n = self._node()
            return f"n{n} {c.snapshot(n)}"
        if action == "transfer":
            n, to = self._leader_or_any(), self._node()
            return f"n{n} {c.transfer(n, to)}"
        if action == "conf_change":
            n = self._leader_or_any()
            kind = rng.choice(list(ConfChangeType))
            target = self._node()
            if target == n and not self.self_removal and kind != ConfChangeType.ADD_VOTER:
                return f"n{n} no self-removal"
            return f"n{n} {c.conf_change(n, kind, target)}"
        raise ValueError(f"unknown action {action}")

    def converge(self) -> int:
        done = converge(self.cluster, self.rng)
        return done.ticks


def run_schedule(
    seed: int,
    nodes: int,
    steps: int,
    trace: Callable[[str], None] | None = None,
    self_removal: bool = True,
) -> Outcome:
    """Run one schedule; never raises for a failure inside the simulation (it is in the
    returned Outcome)."""
    out = Outcome(seed, nodes, 0)
    sched: Schedule | None = None
    action = "setup"
    try:
        sched = Schedule(seed, nodes, trace, self_removal)
        if trace is not None:
            trace(f"seed {seed}: {sched.opts}")
        for step in range(1, steps + 1):
            out.steps = step
            action = sched.pick()
            what = sched.do(action)
            sched.cluster.observe()
            if sched.cluster.leaders():
                out.counts["steps_with_leader"] = out.counts.get("steps_with_leader", 0) + 1
            if trace is not None:
                trace(f"{step:5d} {action:<12} {what}")
                trace(f"      {sched.cluster.summary()}")
            if step % CONVERGE_EVERY == 0 or step == steps:
                action = "converge"
                out.liveness_ticks.append(sched.converge())
                if trace is not None:
                    trace(f"{step:5d} converged in {out.liveness_ticks[-1]} ticks")
    except Exception as exc:  # noqa: BLE001 - every failure is reported with its seed
        out.failed_action = action
        out.error = "".join(traceback.format_exception(exc)).rstrip()
    if sched is not None:
        out.counts.update(_counts(sched.cluster))
    return out


def _counts(c: Cluster) -> dict[str, int]:
    return {
        "terms_with_leader": len(c.elections.leaders),
        "applied": len(c.sm.history),
        "conf_changes": sum(e.type == EntryType.CONF_CHANGE for e in c.sm.history),
        "reads_served": c.reads.served,
        "snapshots": len({idx for _, idx in c.snapshots}),
        "messages": c.net.stats.sent,
        "restarts": sum(n.incarnation for n in c.nodes.values()),
    }
