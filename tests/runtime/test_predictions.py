"""A leader answers proposers from predicted results when their entries commit
(kvraft/runtime/predictions.py), against a scripted core and a state machine whose apply
a test can hold.

What a client can observe: the answer arrives while the apply has not even started, and
is the apply's result; reads still wait for the apply; a prediction that differs from
the apply stops the node. With ``follower_apply_ms`` a leader also holds the applies of
entries already answered and writes them with its next log write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from kvraft.core.types import Role
from kvraft.runtime import Driver, DriverConfig

from .fakes import FakeJointLog, FakePredictingStateMachine
from .test_driver import Rig, until
from .test_driver import run as run_rig


class PredictingRig(Rig):
    def __init__(self, **cfg: Any) -> None:
        super().__init__(**cfg)
        self.log = FakeJointLog(self.journal)
        self.sm = FakePredictingStateMachine(self.journal)
        self.driver = Driver(
            self.node, self.log, self.sm, self.transport, DriverConfig(**self.config))

    def release(self) -> None:
        super().release()
        self.sm.apply_gate.set()

    def applies(self) -> list[str]:
        return [e for e in self.journal.events if e.startswith(("apply", "joined"))]


def run(test: Callable[[PredictingRig], Coroutine[Any, Any, None]], **cfg: Any) -> None:
    run_rig(test, PredictingRig, **cfg)


def test_a_lone_proposal_is_answered_when_it_commits_before_its_apply_starts() -> None:
    async def t(rig: Rig) -> None:
        await until(lambda: rig.driver.role == Role.LEADER)
        rig.sm.apply_gate.clear()  # no apply can start
        assert await rig.driver.propose(b"a=1") == 1  # the apply's result, predicted
        assert rig.sm.predicted == [1] and rig.sm.applies == 0
        assert rig.driver.applied == 0 and rig.driver.stats.answered_predicted == 1
        read = asyncio.ensure_future(rig.driver.read_index())
        await asyncio.sleep(0.05)
        assert not read.done(), "a read was served before the state applied the write"
        rig.sm.apply_gate.set()
        assert await read <= rig.driver.applied == 1
        assert rig.sm.data == {b"a": b"1"}

    run(t)


def test_many_proposals_in_one_ready_are_not_run_dry() -> None:
    """A large Ready is answered by the apply (its ``staged`` results), not a dry run."""

    async def t(rig: Rig) -> None:
        rig.log.gate.clear()  # hold the first write: the rest pile up in one Ready
        first = asyncio.ensure_future(rig.driver.propose(b"k0=v"))
        await until(lambda: len(rig.node.log) == 1)
        rest = [asyncio.ensure_future(rig.driver.propose(b"k%d=v" % i)) for i in range(1, 20)]
        await until(lambda: len(rig.node.log) == 20)
        rig.log.gate.set()
        assert await asyncio.gather(first, *rest) == list(range(1, 21))
        assert rig.sm.predicted == [1], rig.sm.predicted

    run(t)


def test_a_prediction_other_than_the_apply_result_stops_the_node() -> None:
    async def t(rig: Rig) -> None:
        rig.sm.lie = True
        assert await rig.driver.propose(b"a=1") == 101  # what the dry run said
        done = rig.driver.done
        assert done is not None
        await until(done.done)
        assert "not deterministic" in repr(rig.driver.fatal)

    run(t)


def test_a_leader_holds_answered_applies_and_joins_them_into_its_next_write() -> None:
    async def t(rig: Rig) -> None:
        assert await rig.driver.propose(b"a=1") == 1
        await asyncio.sleep(0.02)
        assert rig.applies() == [] and rig.driver.applied == 0  # held
        rig.journal.events.clear()
        assert await rig.driver.propose(b"b=2") == 2  # predicted after the joined write
        assert rig.applies()[:2] == ["joined", "apply 1..1"], rig.journal.events
        assert rig.sm.predicted == [1, 2]
        rig.journal.events.clear()
        assert await rig.driver.read_index() <= rig.driver.applied == 2  # a read: no wait
        assert rig.applies() == ["apply 2..2"], rig.journal.events
        assert await rig.driver.propose(b"c=3") == 3
        await until(lambda: rig.driver.applied == 3)  # nothing came: the delay ran out

    run(t, follower_apply_ms=200)
