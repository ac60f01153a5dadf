"""Hypothesis drives the simulated cluster (3 and 5 voters + 1 spare node).

Every rule is one action of ``Cluster``; after every rule ``Cluster.observe`` checks the
safety properties of ``invariants.py`` (writes, applies and sends are checked as they
happen). The ``converge`` rule heals everything and requires liveness within
``liveness.BOUND_ELECTION_TIMEOUTS`` election timeouts. A failure prints the shrunk
sequence of rules, which replays exactly (all randomness comes from the drawn values).

Profiles: by default (and with CI=true) a bounded number of derandomized examples, the
same on every run; KVRAFT_SIM_DEEP=1 runs 20 times more examples, 3 times longer, with
fresh randomness. KVRAFT_SIM_NO_SELF_REMOVAL=1 stops leaders from removing or demoting
themselves (a known open bug, see test_scenarios.py) so deep runs can look further.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kvraft.core.types import ConfChangeType
from tests.sim.cluster import Cluster, SimOptions
from tests.sim.liveness import converge, pump

DEEP = bool(os.environ.get("KVRAFT_SIM_DEEP"))
NO_SELF_REMOVAL = bool(os.environ.get("KVRAFT_SIM_NO_SELF_REMOVAL"))


def _settings(examples: int, steps: int) -> settings:
    if DEEP:
        examples, steps = examples * 20, steps * 3
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=not DEEP,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def make_machine(voters: int) -> type[RuleBasedStateMachine]:
    node = st.integers(1, voters + 1)
    index = st.integers(0, 1 << 16)

    class RaftCluster(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.c: Cluster | None = None

        @property
        def cluster(self) -> Cluster:
            assert self.c is not None
            return self.c

        def leader(self, fallback: int) -> int:
            leaders = self.cluster.leaders()
            if not leaders:
                return fallback
            return max(leaders, key=lambda n: n.raw.term if n.raw is not None else 0).id

        @initialize(
            seed=st.integers(0, (1 << 32) - 1),
            pre_vote=st.booleans(),
            check_quorum=st.booleans(),
            bounded=st.booleans(),
            small_msgs=st.booleans(),
            lazy_commit=st.booleans(),
        )
        def setup(
            self, seed: int, pre_vote: bool, check_quorum: bool, bounded: bool, small_msgs: bool,
            lazy_commit: bool,
        ) -> None:
            opts = SimOptions(
                nodes=voters,
                election_ticks=5,
                pre_vote=pre_vote,
                check_quorum=check_quorum or bounded,
                max_entries_per_msg=2 if small_msgs else 256,
                max_inflight_msgs=2 if small_msgs else 256,
                max_delay_ticks=2 if bounded else None,
                lazy_commit=lazy_commit,
            )
            self.c = Cluster(opts, seed)

        def teardown(self) -> None:
            if self.c is not None:  # coverage figures for --hypothesis-show-statistics
                applied = len(self.c.sm.history)
                event("applied entries", "0" if not applied else "<10" if applied < 10 else ">=10")
                event("terms with a leader", str(min(len(self.c.elections.leaders), 5)))

        @invariant()
        def safety(self) -> None:
            if self.c is not None:
                self.c.observe()

        # ------------------------------------------------------------ time and Readys
        @rule(k=st.integers(1, 4))
        def tick(self, k: int) -> None:
            for _ in range(k):
                self.cluster.tick_all()

        @rule(n=node)
        def tick_one(self, n: int) -> None:
            if self.cluster.opts.max_delay_ticks is None:  # no clock drift with leases
                self.cluster.tick(n)

        @rule(n=node)
        def campaign(self, n: int) -> None:
            self.cluster.campaign(n)

        @rule(n=node)
        def flush_commit(self, n: int) -> None:  # the runtime's timer, at any moment
            raw = self.cluster.nodes[n].raw
            if raw is not None:
                raw.flush_commit()

        @rule(n=node, batch=st.integers(1, 3))
        def ready_stage(self, n: int, batch: int) -> None:
            self.cluster.step_ready(n, apply_batch=batch)

        @rule(n=node)
        def drain(self, n: int) -> None:
            self.cluster.drain(n)

        @rule(k=st.integers(1, 5), seed=index)
        def healthy_rounds(self, k: int, seed: int) -> None:
            """k ticks, each followed by processing and delivering everything (no loss
            beyond the cut links)."""
            rng = random.Random(seed)
            for _ in range(k):
                self.cluster.tick_all()
                pump(self.cluster, rng)

        # ------------------------------------------------------------ network
        @rule(i=index, fifo=st.booleans())
        def deliver(self, i: int, fifo: bool) -> None:
            net = self.cluster.net
            if net.inflight and fifo:
                m = net.inflight[i % len(net.inflight)].msg
                oldest = net.oldest_index(m.src, m.dst)
                i = i if oldest is None else oldest
            self.cluster.deliver(i)

        @rule(seed=index, k=st.integers(1, 12))
        def deliver_some(self, seed: int, k: int) -> None:
            rng = random.Random(seed)
            for _ in range(k):
                if not self.cluster.net.inflight:
                    break
                self.cluster.deliver(rng.randrange(len(self.cluster.net.inflight)))

        @rule(i=index)
        def drop(self, i: int) -> None:
            self.cluster.drop(i)

        @rule(i=index)
        def duplicate(self, i: int) -> None:
            self.cluster.duplicate(i)

        @rule(sides=st.lists(st.booleans(), min_size=voters + 1, max_size=voters + 1))
        def partition(self, sides: list[bool]) -> None:
            ids = self.cluster.ids()
            a = [i for i, s in zip(ids, sides, strict=True) if s]
            self.cluster.partition([a, [i for i in ids if i not in a]])

        @rule(a=node, b=node)
        def cut_one_way(self, a: int, b: int) -> None:
            self.cluster.cut_one_way(a, b)

        @rule()
        def heal(self) -> None:
            self.cluster.heal()

        # ------------------------------------------------------------ crashes
        @rule(n=node)
        def crash(self, n: int) -> None:
            self.cluster.crash(n)

        @rule(n=node)
        def restart(self, n: int) -> None:
            self.cluster.restart(n)

        # ------------------------------------------------------------ clients and operators
        @rule(n=node, k=st.integers(1, 3))
        def propose(self, n: int, k: int) -> None:
            for _ in range(k):
                self.cluster.propose(self.leader(n))

        @rule(n=node, lease=st.booleans())
        def read(self, n: int, lease: bool) -> None:
            self.cluster.read_index(self.leader(n), lease=lease)

        @rule(n=node)
        def snapshot(self, n: int) -> None:
            self.cluster.snapshot(n)

        @rule(n=node, to=node)
        def transfer(self, n: int, to: int) -> None:
            self.cluster.transfer(self.leader(n), to)

        @rule(n=node, kind=st.sampled_from(list(ConfChangeType)), who=node)
        def conf_change(self, n: int, kind: ConfChangeType, who: int) -> None:
            leader = self.leader(n)
            if NO_SELF_REMOVAL and who == leader and kind != ConfChangeType.ADD_VOTER:
                return
            self.cluster.conf_change(leader, kind, who)

        # ------------------------------------------------------------ liveness
        @rule(seed=index)
        def heal_and_converge(self, seed: int) -> None:
            converge(self.cluster, random.Random(seed))

    RaftCluster.__name__ = RaftCluster.__qualname__ = f"RaftCluster{voters}"
    return RaftCluster


Raft3 = make_machine(3)
Raft3.TestCase.settings = _settings(examples=150, steps=80)
TestRaft3 = Raft3.TestCase

Raft5 = make_machine(5)
Raft5.TestCase.settings = _settings(examples=80, steps=80)
TestRaft5 = Raft5.TestCase
