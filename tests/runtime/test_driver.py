"""The runtime driver against a scripted core, a fake log store, state machine and transport.

What a peer or a client can observe: the order of persist/send/apply, group commit of
concurrent proposals, proposal outcomes on leadership changes, backpressure, snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    InstallSnapshot,
    Role,
    SnapshotMeta,
    VoteResponse,
    encode_conf_change,
)
from kvraft.errors import NotLeader
from kvraft.runtime import Driver, DriverConfig
from kvraft.runtime.errors import DriverStopped, OutcomeUnknown, Overloaded

from .fakes import (
    FakeJointLog,
    FakeJointStateMachine,
    FakeLog,
    FakeNode,
    FakeStateMachine,
    FakeTransport,
    Journal,
    fail_storage,
)


class Rig:
    def __init__(self, **cfg: Any) -> None:
        self.journal = Journal()
        self.node = FakeNode(self.journal)
        self.log = FakeLog(self.journal)
        self.sm = FakeStateMachine(self.journal)
        self.transport = FakeTransport(self.journal)
        cfg.setdefault("tick_ms", 10)
        self.config = cfg
        self.driver = Driver(
            self.node, self.log, self.sm, self.transport, DriverConfig(**cfg)
        )

    def release(self) -> None:
        """Open every gate a test may have closed."""
        self.log.gate.set()
        self.sm.commit_gate.set()


R = TypeVar("R", bound=Rig)


def run(
    test: Callable[[R], Coroutine[Any, Any, None]], make: Callable[..., R] = Rig, **cfg: Any
) -> R:
    rig = make(**cfg)

    async def main() -> None:
        rig.driver.start()
        try:
            await asyncio.wait_for(test(rig), 20)
        finally:
            rig.release()
            await rig.driver.stop()

    asyncio.run(main())
    return rig


async def until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.002)


def test_proposal_resolves_with_its_apply_result() -> None:
    async def t(rig: Rig) -> None:
        first = await rig.driver.propose(b"a=1")
        second = await rig.driver.propose(b"b=2")
        assert (first, second) == (1, 2)
        assert rig.sm.data == {b"a": b"1", b"b": b"2"}
        await until(lambda: rig.driver.applied == 2)

    run(t)


def test_proposer_is_answered_before_the_state_commit_and_reads_wait_for_it() -> None:
    """A committed entry is durable in the log, so its proposer hears the result as soon
    as the state machine computed it, while the state's own commit (fsync) still runs;
    the applied index, and every read barrier, moves only once that commit is done."""

    async def t(rig: Rig) -> None:
        rig.sm.commit_gate.clear()
        assert await rig.driver.propose(b"a=1") == 1
        assert rig.driver.applied == 0
        read = asyncio.ensure_future(rig.driver.read_index())
        await until(lambda: bool(rig.node.pending_reads))  # the core has the read
        assert not read.done()
        rig.sm.commit_gate.set()
        assert await read <= rig.driver.applied == 1

    run(t)


def test_concurrent_proposals_share_one_durable_write() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()  # hold the first save: everything else piles up meanwhile
        first = asyncio.ensure_future(rig.driver.propose(b"k0=v"))
        await until(lambda: len(rig.node.log) == 1)
        rest = [asyncio.ensure_future(rig.driver.propose(b"k%d=v" % i)) for i in range(1, 200)]
        await until(lambda: len(rig.node.log) == 200)  # stepped while the save is blocked
        rig.log.gate.set()
        results = await asyncio.gather(first, *rest)
        assert results == list(range(1, 201))
        sizes = [len(entries) for entries, _, _ in rig.log.saves if entries]
        assert sizes[0] == 1 and sizes[1] == 199, sizes

    run(t)


def test_ready_order_is_send_persist_send_apply_advance() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        first = asyncio.ensure_future(rig.driver.propose(b"a=1"))
        await until(lambda: len(rig.node.log) == 1)  # Ready A (persist entry 1) is blocked
        second = asyncio.ensure_future(rig.driver.propose(b"b=2"))
        await until(lambda: len(rig.node.log) == 2)
        # Ready B will persist entry 2, commit entry 1 and carry both kinds of messages
        rig.node.extra = {
            "messages": (AppendEntries(1, 2, 1, 0, 0, (), 1),),
            "persisted_messages": (VoteResponse(1, 3, 1, True),),
        }
        rig.journal.events.clear()
        rig.log.gate.set()
        await asyncio.gather(first, second)
        ev = rig.journal.events
        b = ev.index("advance") + 1  # Ready B starts after Ready A's advance
        ready_b = ev[b : ev.index("advance", b) + 1]
        assert ready_b == [
            "send AppendEntries 2",
            "save entries=1",
            "send VoteResponse 3",
            "apply 1..1",
            "advance",
        ], ev

    run(t)


def test_losing_leadership_fails_pending_proposals_as_unknown_and_reads_as_not_leader() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        p = asyncio.ensure_future(rig.driver.propose(b"a=1"))
        await until(lambda: len(rig.node.log) == 1)
        rig.node.become(Role.FOLLOWER, 2, 3)
        r = asyncio.ensure_future(rig.driver.read_index())
        rig.log.gate.set()
        with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
            await p
        with pytest.raises(NotLeader) as info:
            await r
        assert info.value.leader_id == 3
        with pytest.raises(NotLeader):
            await rig.driver.propose(b"c=3")

    run(t)


def test_entry_replaced_by_another_term_is_outcome_unknown() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        p = asyncio.ensure_future(rig.driver.propose(b"a=1"))
        await until(lambda: len(rig.node.log) == 1)
        # a new term begins and entry 1 is now another leader's entry
        rig.node.become(Role.LEADER, 2, 1)
        rig.node.log[0] = Entry(2, 1, data=b"other=1")
        rig.node.handed = 0
        rig.log.gate.set()
        with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
            await p
        await until(lambda: rig.driver.applied == 1)
        assert rig.sm.data == {b"other": b"1"}

    run(t)


def test_backpressure_refuses_beyond_inflight_limit() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        held = [asyncio.ensure_future(rig.driver.propose(b"x=%d" % i)) for i in range(2)]
        await until(lambda: len(rig.node.log) == 2)
        with pytest.raises(Overloaded, match="the limit is 2"):
            await rig.driver.propose(b"y=1")
        rig.log.gate.set()
        await asyncio.gather(*held)
        assert await rig.driver.propose(b"z=1") == 3  # budget released after apply

    run(t, max_inflight_proposals=2)


def test_backpressure_by_bytes() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        held = asyncio.ensure_future(rig.driver.propose(b"x=" + b"v" * 60))
        await until(lambda: len(rig.node.log) == 1)
        with pytest.raises(Overloaded, match="bytes in flight"):
            await rig.driver.propose(b"y=" + b"v" * 60)
        rig.log.gate.set()
        await held

    run(t, max_inflight_bytes=100)


def test_pending_reads_are_bounded() -> None:
    """A leader that cannot confirm reads (here: its Ready loop is held in a save) must
    not pile them up without end: beyond max_pending_reads a read is refused at once
    with Overloaded, and admitted again once the pending ones are answered."""

    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        write = asyncio.ensure_future(rig.driver.propose(b"a=1"))
        await until(lambda: len(rig.node.log) == 1)  # the Ready loop waits in save()
        held = [rig.driver.read_index_nowait() for _ in range(2)]
        with pytest.raises(Overloaded, match=r"too many reads pending \(2; the limit is 2\)"):
            rig.driver.read_index_nowait()  # refused before it is even queued
        await until(lambda: len(rig.node.pending_reads) == 2)
        with pytest.raises(Overloaded, match="reads pending"):
            await rig.driver.read_index(lease=True)
        assert rig.driver.counters()["reads_overloaded"] == 2
        rig.log.gate.set()
        await write
        assert all(i <= rig.driver.applied for i in await asyncio.gather(*held))
        assert await rig.driver.read_index() <= rig.driver.applied
        assert rig.driver.counters()["reads_pending"] == 0

    run(t, max_pending_reads=2)


def test_read_index_resolves_once_applied() -> None:
    async def t(rig: Rig) -> None:
        await rig.driver.propose(b"a=1")
        index = await rig.driver.read_index()
        assert index <= rig.driver.applied
        assert rig.sm.data[b"a"] == b"1"

    run(t)


def test_snapshot_after_threshold_compacts_log() -> None:
    async def t(rig: Rig) -> None:
        for i in range(12):
            await rig.driver.propose(b"k=%d" % i)
        await until(lambda: bool(rig.log.compactions))
        meta = rig.log.compactions[0]
        assert meta.index >= 5
        assert rig.driver.latest_snapshot is not None
        # a follower needing that snapshot gets the file streamed by the transport
        rig.node.extra = {"messages": (InstallSnapshot(1, 2, 1, meta),)}
        await rig.driver.propose(b"k=last")
        assert rig.transport.snapshots[0][1].meta == meta

    run(t, snapshot_entries=5)


def test_missing_snapshot_file_is_reported_to_the_core() -> None:
    async def t(rig: Rig) -> None:
        rig.node.extra = {"messages": (InstallSnapshot(1, 2, 1, SnapshotMeta(7, 1)),)}
        await rig.driver.propose(b"a=1")
        await until(lambda: rig.node.snapshot_reports == [(2, False)])
        # (e.g. a crash between writing a snapshot file and compacting the log behind it)
        # a fresh snapshot is taken and the log compacted to it, so the core's next
        # attempt names a snapshot this node has a file for: the follower can catch up
        await until(lambda: bool(rig.log.compactions))
        meta = rig.log.compactions[-1]
        assert rig.driver.latest_snapshot is not None
        assert rig.driver.latest_snapshot.meta == meta
        rig.node.extra = {"messages": (InstallSnapshot(1, 2, 1, meta),)}
        await rig.driver.propose(b"b=2")
        assert [m.meta for m, _ in rig.transport.snapshots] == [meta]

    run(t)


def test_received_snapshot_restored_before_log_save() -> None:
    async def t(rig: Rig) -> None:
        rig.node.become(Role.FOLLOWER, 2, 2)
        meta = SnapshotMeta(50, 2, ConfState(voters=frozenset({1, 2, 3})))
        rig.driver.deliver_snapshot(InstallSnapshot(2, 1, 2, meta), "/recv/50")
        await until(lambda: rig.driver.applied == 50)
        assert rig.journal.index("restore /recv/50") < rig.journal.index("save")
        assert rig.log.saves[-1][2] == meta
        assert rig.driver.latest_snapshot is not None
        assert rig.driver.latest_snapshot.path == "/recv/50"
        assert rig.driver.conf_state == meta.conf_state

    run(t)


def test_conf_change_applies_through_core_and_reports_membership() -> None:
    async def t(rig: Rig) -> None:
        cs = await rig.driver.propose_conf_change(ConfChange(ConfChangeType.ADD_VOTER, 2))
        assert cs.voters == {1, 2}
        assert rig.node.conf_changes == [ConfChange(ConfChangeType.ADD_VOTER, 2)]
        assert rig.sm.conf == cs  # saved with the applied index
        assert rig.driver.conf_state == cs

    run(t)


def test_storage_failure_is_fatal_and_fails_waiters() -> None:
    async def t(rig: Rig) -> None:
        rig.log.fail_with = fail_storage()
        # appended (and, on a real leader, already sent to followers) before the save failed
        with pytest.raises(OutcomeUnknown, match="disk on fire.*outcome is unknown"):
            await rig.driver.propose(b"a=1")
        assert rig.driver.done is not None
        await asyncio.wait((rig.driver.done,))
        assert "disk on fire" in repr(rig.driver.fatal)
        with pytest.raises(DriverStopped):
            await rig.driver.propose(b"b=1")

    run(t)


def test_ticks_reach_the_core_and_messages_are_stepped() -> None:
    async def t(rig: Rig) -> None:
        await until(lambda: rig.node.ticks >= 3)
        rig.driver.deliver([AppendResponse(2, 1, 1, 0)])
        await until(lambda: len(rig.node.stepped) == 1)

    run(t)


def test_stop_fails_callers_still_waiting() -> None:
    async def t(rig: Rig) -> None:
        rig.log.gate.clear()
        p = asyncio.ensure_future(rig.driver.propose(b"a=1"))
        await until(lambda: len(rig.node.log) == 1)
        stopping = asyncio.ensure_future(rig.driver.stop())
        rig.log.gate.set()
        await stopping
        # the entry was persisted (and sent to followers, who may commit it): the client
        # must hear "outcome unknown", never a definite failure
        with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
            await p

    run(t)


def test_wait_for_sees_leadership_change() -> None:
    async def t(rig: Rig) -> None:
        await rig.driver.transfer_leadership(2)
        assert await rig.driver.wait_for(lambda d: d.leader == 2, timeout=5)
        assert rig.driver.role == Role.FOLLOWER

    run(t)


def test_commit_only_hard_state_rides_along_with_the_next_durable_write() -> None:
    async def t(rig: Rig) -> None:
        await rig.driver.propose(b"a=1")
        saves = len(rig.log.saves)
        rig.node.extra = {"hard_state": HardState(1, 1, 7)}  # only the commit index moved
        rig.node.soft_dirty = True  # make a Ready happen
        await until(lambda: not rig.node.has_ready() and not rig.node.outstanding)
        assert len(rig.log.saves) == saves  # no fsync for it
        rig.node.extra = {"hard_state": None}  # the next Ready has entries, no hard state
        await rig.driver.propose(b"b=2")
        entries, hard, _ = rig.log.saves[saves]
        assert [e.index for e in entries] == [2] and hard == HardState(1, 1, 7)
        rig.node.extra = {"hard_state": HardState(2, 3, 7)}  # a new term/vote: saved at once
        rig.node.soft_dirty = True
        await until(lambda: len(rig.log.saves) > saves + 1)
        assert rig.log.saves[-1][1] == HardState(2, 3, 7)

    run(t)


def test_follower_acks_before_applying_and_a_leader_joins_its_writes() -> None:
    """A follower's append ack is what the leader waits for: it leaves after the log write
    and the apply follows in a write of its own, however many entries committed; a leader
    applies in the log write's transaction (one fsync pair)."""
    journal = Journal()
    node = FakeNode(journal)
    log, sm = FakeJointLog(journal), FakeJointStateMachine(journal)
    driver = Driver(node, log, sm, FakeTransport(journal), DriverConfig(tick_ms=10))
    ack = (AppendResponse(1, 2, 1, 0),)

    async def ready(**fields: object) -> list[str]:
        journal.events.clear()
        node.extra = dict(fields)
        driver._submit(lambda: None)  # wake the driver task
        await until(lambda: "advance" in journal.events)
        events = list(journal.events)
        return events[: events.index("advance") + 1]  # this Ready's handling

    async def main() -> None:
        driver.start()
        try:
            node.become(Role.FOLLOWER, 1, 2)
            ents = [Entry(1, i, data=b"k%d=v" % i) for i in range(1, 14)]
            assert await ready(entries=tuple(ents[:1]), persisted_messages=ack) == [
                "save entries=1", "send AppendResponse 2", "advance"]
            small = await ready(
                entries=(ents[1],), committed_entries=(ents[0],), persisted_messages=ack)
            assert small == [
                "save entries=1", "send AppendResponse 2", "apply 1..1", "advance"], small
            large = await ready(
                entries=(ents[11],), committed_entries=tuple(ents[1:11]), persisted_messages=ack)
            assert large == [
                "save entries=1", "send AppendResponse 2", "apply 2..11", "advance"], large
            node.become(Role.LEADER, 2, 1)
            leader = await ready(
                entries=(ents[12],), committed_entries=(ents[11],), persisted_messages=ack)
            assert leader == [
                "save entries=1", "joined", "apply 12..12", "send AppendResponse 2", "advance"
            ], leader
            assert driver.applied == 12 and sm.data[b"k12"] == b"v"
        finally:
            await driver.stop()

    asyncio.run(main())


def test_follower_holds_small_applies_and_writes_them_together() -> None:
    """follower_apply_ms: at low load a follower applies committed entries in batches;
    a membership change, a role change or a snapshot does not wait for the batch."""
    journal = Journal()
    node = FakeNode(journal)
    sm = FakeStateMachine(journal)
    driver = Driver(node, FakeLog(journal), sm, FakeTransport(journal),
                    DriverConfig(tick_ms=10, follower_apply_ms=300))
    ents = [Entry(1, i, data=b"k%d=v" % i) for i in range(1, 12)]

    async def ready(**fields: object) -> None:
        journal.events.clear()
        node.extra = dict(fields)
        driver._submit(lambda: None)  # wake the driver task
        await until(lambda: "advance" in journal.events)

    def applies() -> list[str]:
        return [e for e in journal.events if e.startswith("apply")]

    async def main() -> None:
        driver.start()
        try:
            node.become(Role.FOLLOWER, 1, 2)
            await ready(entries=tuple(ents[:6]))
            for k in range(3):  # three Readys commit one entry each: none applied yet
                await ready(committed_entries=(ents[k],))
                assert applies() == [], journal.events
            assert driver.applied == 0
            journal.events.clear()
            await until(lambda: driver.applied == 3)  # the delay ran out: one write
            assert applies() == ["apply 1..3"], journal.events
            # a membership change is applied at once, with what was held before it
            await ready(committed_entries=(ents[3],))
            assert applies() == []
            cc = Entry(1, 5, EntryType.CONF_CHANGE,
                       encode_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, 9)))
            await ready(committed_entries=(cc,))
            assert applies() == ["apply 4..5"] and driver.applied == 5
            # becoming leader: what was held is applied in its first Ready as leader
            await ready(committed_entries=(ents[5],))
            node.become(Role.LEADER, 2, 1)
            await ready(entries=tuple(ents[6:7]), committed_entries=())
            assert applies() == ["apply 6..6"] and driver.applied == 6
            await ready(committed_entries=(ents[6],))
            assert applies() == ["apply 7..7"] and driver.applied == 7
            # a snapshot covers what was held: those entries are never applied
            node.become(Role.FOLLOWER, 3, 2)
            await ready(entries=tuple(ents[7:9]))
            await ready(committed_entries=(ents[7],))
            snap = SnapshotMeta(20, 3, ConfState(voters=frozenset({1, 2})))
            driver.deliver_snapshot(InstallSnapshot(2, 1, 3, snap), "/recv/20")
            await until(lambda: driver.applied == 20)
            assert not any(e.startswith("apply 8") for e in journal.events), journal.events
            assert sm.index == 20
        finally:
            await driver.stop()

    asyncio.run(main())
