"""One durable transaction per Ready: a log save and the apply of already durable committed
entries written together (LmdbLogStore.save(extra=...), KvStateMachine.joint_apply), and a
real single-node driver that uses it -- all or nothing, and a restart finds log and state
in agreement."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kvraft.core import Config, RawNode
from kvraft.core.types import ConfState, Entry, HardState, InstallSnapshot, Message
from kvraft.kv.machine import KvStateMachine
from kvraft.runtime import Driver, DriverConfig
from kvraft.runtime.base import LocalSnapshot
from kvraft.server import recovery
from kvraft.server.machine import MachineAdapter
from kvraft.server.timing import DiskTimings, TimedLog, TimedStateMachine
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore
from tests.kv.helpers import Log, put

ONE = ConfState(voters=frozenset({1}))
ROOT = Path(__file__).resolve().parents[2]


class Node:
    """A node's storage as the server opens it: one LMDB environment for log and state."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = LmdbLogStore(tmp / "db")
        self.state = LmdbStateStore(self.log.env)
        self.snaps = SnapshotDir(tmp / "snapshots")
        self.machine = KvStateMachine(self.state, self.snaps)

    def reopen(self) -> Node:
        self.log.close()
        return Node(self.tmp)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    holder = [Node(tmp_path)]
    yield holder[0]
    holder[0].log.close()


def _committed_log(node: Node, n: int) -> list[Entry]:
    """Write n put entries (term 1) to the log, committed; return them."""
    log = Log()
    entries = [log.cmd(put(b"k%d" % i, b"v%d" % i)) for i in range(n)]
    node.log.save(entries=entries, hard_state=HardState(1, 1, n))
    return entries


def test_joined_save_commits_new_entries_and_the_apply_together(node: Node) -> None:
    committed = _committed_log(node, 3)
    joint = MachineAdapter(node.machine).joint_apply(node.log)
    assert joint is not None
    more = [Entry(1, i) for i in (4, 5)]
    seen: list[Sequence[object | None]] = []
    results: list[Sequence[object | None]] = []
    node.log.save(
        entries=more, hard_state=HardState(1, 1, 3),
        extra=lambda txn: results.append(joint(txn, committed, ONE, seen.append)),
    )
    assert len(results[0]) == 3 and seen == results  # staged saw the same results
    assert node.machine.applied() == (3, 1) and node.log.last_index() == 5
    node = node.reopen()
    try:
        assert node.machine.applied() == (3, 1) and node.log.last_index() == 5
        assert node.machine.position().conf_state == ONE
        got = node.state.get(b"k2")
        assert got is not None and got.value == b"v2"
    finally:
        node.log.close()


def test_joined_results_equal_a_separate_apply(tmp_path: Path) -> None:
    a, b = Node(tmp_path / "a"), Node(tmp_path / "b")
    try:
        ea, eb = _committed_log(a, 4), _committed_log(b, 4)
        plain = list(a.machine.apply(ea, ONE))
        joint = b.machine.joint_apply(b.log)
        assert joint is not None
        out: list[Any] = []
        b.log.save(extra=lambda txn: out.append(joint(txn, eb, ONE, None)))
        assert list(out[0]) == plain
        assert a.machine.position() == b.machine.position()
    finally:
        a.log.close()
        b.log.close()


def test_failed_joined_apply_writes_neither_the_log_nor_the_state(node: Node) -> None:
    committed = _committed_log(node, 2)
    joint = node.machine.joint_apply(node.log)
    assert joint is not None

    def apply_then_fail(txn: object) -> None:
        joint(txn, committed, ONE, None)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        node.log.save(entries=[Entry(2, 3)], hard_state=HardState(2, 0, 2), extra=apply_then_fail)
    assert node.log.last_index() == 2 and node.log.initial_state()[0].term == 1
    assert node.machine.applied() == (0, 0)
    node = node.reopen()
    try:
        assert node.log.last_index() == 2 and node.log.initial_state()[0] == HardState(1, 1, 2)
        assert node.machine.applied() == (0, 0) and node.state.get(b"k0") is None
    finally:
        node.log.close()


def test_joined_apply_only_for_the_log_sharing_the_environment(
    node: Node, tmp_path: Path
) -> None:
    other = LmdbLogStore(tmp_path / "other")
    try:
        assert node.machine.joint_apply(other) is None
    finally:
        other.close()
    timings = DiskTimings()
    timed = TimedStateMachine(MachineAdapter(node.machine), timings)
    assert timed.joint_apply(TimedLog(node.log, timings)) is not None


class _NoPeers:
    def send(self, messages: Sequence[Message]) -> None:
        raise AssertionError(f"a single node sends nothing: {messages}")

    def send_snapshot(self, message: InstallSnapshot, snap: LocalSnapshot) -> None:
        raise AssertionError("a single node sends no snapshot")


async def _run_driver(node: Node, values: dict[bytes, bytes]) -> tuple[int, int]:
    """Start a single-voter node on ``node``'s storage, put ``values`` concurrently,
    stop; returns (applied index, joined applies)."""
    recovery.prepare(node.log, node.machine, node.snaps, peers={1: "127.0.0.1:1"}, join=False)
    applied, _ = node.machine.applied()
    core = RawNode(Config(id=1, election_ticks=10, applied=applied), node.log, random.Random(1))
    driver = Driver(core, node.log, MachineAdapter(node.machine), _NoPeers(),
                    DriverConfig(tick_ms=10, snapshot_entries=0))
    driver.start()
    try:
        await driver.campaign()
        assert await driver.wait_for(lambda d: d.leader == 1, 10)
        log = Log()
        futs = [driver.propose_nowait(log.cmd(put(k, v)).data) for k, v in values.items()]
        results = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert all(r is not None for r in results)
        # answers may leave before the state commit (staged): wait for applied to follow
        assert await driver.wait_for(lambda d: d.applied >= d.commit, 10)
        return driver.applied, driver.stats.applies_joined
    finally:
        await driver.stop()


def test_driver_joins_applies_with_saves_and_a_restart_agrees(node: Node) -> None:
    first = {b"a%d" % i: b"x%d" % i for i in range(300)}
    applied, joined = asyncio.run(_run_driver(node, first))
    # proposals keep arriving while earlier ones commit: Readys carry both
    assert joined > 0
    node = node.reopen()
    try:
        assert node.machine.applied()[0] == applied
        assert node.log.last_index() >= applied
        for k, v in first.items():
            got = node.state.get(k)
            assert got is not None and got.value == v
        second = {b"b%d" % i: b"y" for i in range(50)}
        applied2, _ = asyncio.run(_run_driver(node, second))
        assert applied2 > applied
        assert node.state.get(b"b49") is not None and node.state.get(b"a299") is not None
    finally:
        node.log.close()


def _observe(path: Path) -> tuple[int, int]:
    """(log last, applied) of the store at ``path``, after checking that the state holds
    exactly the puts of entries 1..applied and that the log still has every later entry
    (what a restart replays)."""
    n = Node(path)
    try:
        last, applied = n.log.last_index(), n.machine.applied()[0]
        assert applied <= last
        for i in range(1, applied + 1):
            got = n.state.get(b"k%d" % i)
            assert got is not None and got.value == b"v%d" % i
        assert n.state.get(b"k%d" % (applied + 1)) is None
        if applied < last:
            assert [e.index for e in n.log.entries(applied + 1, last + 1)] == list(
                range(applied + 1, last + 1))
        return last, applied
    finally:
        n.log.close()


@pytest.mark.integration
def test_kill_9_leaves_log_and_state_at_one_commit(tmp_path: Path) -> None:
    """kill -9 a process writing joined transactions at random moments: the store is the
    last acknowledged (log last, applied) or that plus the write in flight, never a mix."""
    seed = int(os.environ.get("KVRAFT_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    rounds = 4 if os.environ.get("CI") else 12
    acked = (0, 0)
    for r in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.server.joint_crash_child", str(tmp_path), str(seed + r)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        assert words[:1] == [b"open"] and tuple(map(int, words[1:])) == acked, (seed, r, words)
        pending: tuple[int, int] | None = None
        for _ in range(rng.choice([0, 1, 5, rng.randint(5, 200)])):
            words = proc.stdout.readline().split()
            if words == [b"ok"]:
                assert pending is not None
                acked, pending = pending, None
            else:
                assert words[:1] == [b"save"], (seed, r, words)
                pending = (int(words[1]), int(words[2]))
        proc.kill()
        proc.wait()
        rest = proc.stdout.read().split(b"\n")
        proc.stdout.close()
        for line in rest:
            words = line.split()
            if words == [b"ok"]:
                assert pending is not None
                acked, pending = pending, None
            elif words[:1] == [b"save"]:
                pending = (int(words[1]), int(words[2]))
        got = _observe(tmp_path)
        assert got == acked or got == pending, f"seed {seed} round {r}: {got} {acked} {pending}"
        acked = got
