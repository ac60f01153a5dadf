"""Three drivers around three REAL cores (kvraft.core.RawNode) over MemoryLogStores, wired
by an in-memory network on one event loop: the runtime's Ready handling against the real
protocol, with crash-restart (keeping only what was saved) and snapshot catch-up."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kvraft.core import Config, RawNode
from kvraft.core.types import (
    AppendEntries,
    ConfState,
    Entry,
    EntryType,
    Heartbeat,
    InstallSnapshot,
    Message,
    Role,
    SnapshotMeta,
)
from kvraft.errors import NotLeader
from kvraft.runtime import Driver, DriverConfig, OutcomeUnknown
from kvraft.runtime.base import LocalSnapshot
from kvraft.storage.memory import MemoryLogStore

IDS = (1, 2, 3)


class DictMachine:
    """A KV state machine in a dict; "durable" = survives the driver (like the log)."""

    def __init__(self, snap_dir: Path) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, str] = {}
        self.index = 0
        self.term = 0
        self.conf = ConfState()
        self.snap_dir = snap_dir

    def applied(self) -> tuple[int, int]:
        return self.index, self.term

    def apply(self, entries: Sequence[Entry], conf_state: ConfState | None,
              staged: Callable[[Sequence[object]], None] | None = None) -> list[object]:
        out: list[object] = []
        with self.lock:
            for e in entries:
                assert e.index == self.index + 1, (e.index, self.index)
                self.index, self.term = e.index, e.term
                if e.type == EntryType.NORMAL and e.data:
                    k, _, v = e.data.decode().partition("=")
                    self.data[k] = v
                    out.append(e.index)
                else:
                    out.append(None)
            if conf_state is not None:
                self.conf = conf_state
        if staged is not None:
            staged(out)
        return out

    def write_snapshot(self) -> LocalSnapshot:
        with self.lock:
            body = {"index": self.index, "term": self.term, "data": dict(self.data),
                    "voters": sorted(self.conf.voters)}
        path = self.snap_dir / f"snap-{body['index']}.json"
        path.write_text(json.dumps(body))
        meta = SnapshotMeta(int(str(body["index"])), int(str(body["term"])), self.conf)
        return LocalSnapshot(str(path), meta, path.stat().st_size)

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        body = json.loads(Path(path).read_text())
        assert body["index"] == meta.index
        with self.lock:
            self.data = dict(body["data"])
            self.index, self.term, self.conf = meta.index, meta.term, meta.conf_state
        return LocalSnapshot(path, meta, Path(path).stat().st_size)


class Net:
    """Delivers messages between drivers on the loop; links can be cut per node."""

    def __init__(self, tmp: Path) -> None:
        self.drivers: dict[int, Driver] = {}
        self.down: set[int] = set()  # nodes cut off from everyone
        self.tmp = tmp
        self.snapshots_sent = 0
        self.sent: list[Message] = []  # every message handed to the network
        self.sends: list[tuple[Message, ...]] = []  # the same, one tuple per send() call

    def _up(self, src: int, dst: int) -> bool:
        return src not in self.down and dst not in self.down and dst in self.drivers

    def transport(self, me: int) -> Any:
        net = self

        class T:
            def send(self, messages: Sequence[Message]) -> None:
                loop = asyncio.get_running_loop()
                net.sent.extend(messages)
                net.sends.append(tuple(messages))
                for m in messages:
                    if net._up(m.src, m.dst):
                        loop.call_soon(net.drivers[m.dst].deliver, [m])

            def send_snapshot(self, message: InstallSnapshot, snap: LocalSnapshot) -> None:
                sender = net.drivers[me]
                if not net._up(message.src, message.dst):
                    sender.report_snapshot(message.dst, False)
                    return
                copy = net.tmp / f"recv-{message.dst}-{message.meta.index}.json"
                shutil.copy(snap.path, copy)
                net.snapshots_sent += 1
                net.drivers[message.dst].deliver_snapshot(message, str(copy))
                sender.report_snapshot(message.dst, True)

            def set_peers(self, peers: Mapping[int, str]) -> None:
                pass

        return T()


class Rig:
    def __init__(
        self, tmp: Path, snapshot_entries: int = 0, commit_flush_ms: int = 0, tick_ms: int = 10,
        quorum_first_ms: int = 0, inline_write_entries: int = 0,
    ) -> None:
        self.tmp = tmp
        self.commit_flush_ms = commit_flush_ms  # > 0: lazy cores, commit flushed by timer
        self.quorum_first_ms = quorum_first_ms  # > 0: quorum-first replication
        self.inline_write_entries = inline_write_entries  # > 0: small writes on the loop
        self.tick_ms = tick_ms
        self.net = Net(tmp)
        self.logs = {i: MemoryLogStore() for i in IDS}
        self.machines: dict[int, DictMachine] = {}
        self.snapshot_entries = snapshot_entries
        for i in IDS:
            self.logs[i].save_conf_state(ConfState(voters=frozenset(IDS)))
            d = tmp / f"n{i}"
            d.mkdir()
            self.machines[i] = DictMachine(d)

    def boot(self, i: int) -> Driver:
        applied, _ = self.machines[i].applied()
        lazy = self.commit_flush_ms > 0
        core = RawNode(Config(id=i, election_ticks=10, applied=applied, lazy_commit=lazy),
                       self.logs[i], random.Random(i * 7919 + applied))
        drv = Driver(core, self.logs[i], self.machines[i], self.net.transport(i),
                     DriverConfig(tick_ms=self.tick_ms, snapshot_entries=self.snapshot_entries,
                                  commit_flush_ms=self.commit_flush_ms,
                                  quorum_first_ms=self.quorum_first_ms,
                                  inline_write_entries=self.inline_write_entries))
        self.net.drivers[i] = drv
        drv.start()
        return drv

    async def crash(self, i: int) -> None:
        drv = self.net.drivers.pop(i)
        await drv.stop()

    async def leader(self, timeout: float = 10.0) -> Driver:
        return await until(lambda: self._leader(), timeout)

    def _leader(self) -> Driver | None:
        live = [d for i, d in self.net.drivers.items() if i not in self.net.down]
        leaders = [d for d in live if d.role == Role.LEADER]
        if len(leaders) == 1 and all(d.leader == leaders[0].node_id for d in live):
            return leaders[0]
        return None


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


def run(main: Callable[[Rig], Any], tmp: Path, **kw: Any) -> None:
    rig = Rig(tmp, **kw)

    async def go() -> None:
        for i in IDS:
            rig.boot(i)
        try:
            await asyncio.wait_for(main(rig), 60)
        finally:
            for i in list(rig.net.drivers):
                await rig.crash(i)

    asyncio.run(go())


async def put_all(leader: Driver, keys: range, prefix: str = "k") -> list[object]:
    return list(await asyncio.gather(
        *(leader.propose(f"{prefix}{i}={i}".encode()) for i in keys)))


def test_concurrent_proposals_replicate_to_every_machine(tmp_path: Path) -> None:
    async def main(rig: Rig) -> None:
        leader = await rig.leader()
        results = await put_all(leader, range(300))
        assert len(set(results)) == 300  # each got its own log index
        await until(lambda: all(m.index == leader.applied for m in rig.machines.values()))
        first = rig.machines[1].data
        assert len(first) == 300 and all(m.data == first for m in rig.machines.values())
        # group commit: far fewer durable writes than proposals on the leader
        assert leader.stats.saves < 150, leader.stats
        index = await leader.read_index()
        assert index >= max(int(str(r)) for r in results)

    run(main, tmp_path)


def test_leader_crash_and_restart_keeps_acknowledged_writes(tmp_path: Path) -> None:
    async def main(rig: Rig) -> None:
        leader = await rig.leader()
        await put_all(leader, range(100))
        old = leader.node_id
        await rig.crash(old)  # the core and driver vanish; the log store and machine stay
        new = await rig.leader()
        assert new.node_id != old
        await put_all(new, range(100, 150))
        rig.boot(old)
        await until(lambda: rig.machines[old].index == new.applied
                    and len(rig.machines[old].data) == 150)
        assert rig.machines[old].data == rig.machines[new.node_id].data

    run(main, tmp_path)


def test_partitioned_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    async def main(rig: Rig) -> None:
        leader = await rig.leader()
        lagging = next(i for i in IDS if i != leader.node_id)
        rig.net.down.add(lagging)
        # a stalled box may make the leader step down (check-quorum); the cut-off
        # follower cannot win, so write again through whoever leads next
        while True:
            try:
                await put_all(leader, range(200))
                break
            except (NotLeader, OutcomeUnknown):
                leader = await rig.leader()
        assert leader.node_id != lagging
        await until(lambda: rig.logs[leader.node_id].first_index() > 50)  # compacted
        rig.net.down.discard(lagging)
        follower = rig.net.drivers[lagging]
        await until(lambda: follower.applied >= leader.applied, 20)
        assert rig.net.snapshots_sent >= 1
        assert follower.stats.snapshots_installed >= 1
        assert rig.machines[lagging].data == rig.machines[leader.node_id].data

    run(main, tmp_path, snapshot_entries=40)


def _commit_only(m: Message, leader: int) -> bool:
    return isinstance(m, AppendEntries) and m.src == leader and not m.entries


def test_lazy_commit_reaches_idle_followers_by_the_flush_timer(tmp_path: Path) -> None:
    """No ticks in this test (a tick is a minute: no heartbeats, no elections but the one
    asked for): once writes stop, only the driver's commit flush can tell followers."""
    async def main(rig: Rig) -> None:
        await rig.net.drivers[1].campaign()
        leader = await rig.leader()
        await put_all(leader, range(5))
        await until(lambda: all(m.index == leader.applied for m in rig.machines.values()))
        assert all(m.data == rig.machines[1].data for m in rig.machines.values())
        flushed = [m for m in rig.net.sent if _commit_only(m, 1)]
        assert flushed and all(m.commit <= leader.commit for m in flushed)
        assert not any(isinstance(m, Heartbeat) for m in rig.net.sent)

    run(main, tmp_path, commit_flush_ms=2, tick_ms=60_000)


@pytest.mark.parametrize("lazy", [True, False])
def test_lazy_commit_rides_on_the_next_append(tmp_path: Path, lazy: bool) -> None:
    """Writes one after another, no ticks and (lazy) no flush within the test: each
    AppendEntries carries the previous commit index, so followers apply every write but
    the last without a message of its own; an eager leader sends them for every write."""
    async def main(rig: Rig) -> None:
        await rig.net.drivers[1].campaign()
        leader = await rig.leader()
        before = len(rig.net.sent)
        written = []  # the writes' log indexes
        for k in range(30):
            last = int(str(await leader.propose(f"k{k}={k}".encode())))  # its log index
            written.append(last)
        await until(lambda: all(m.index >= last - 1 for m in rig.machines.values()))
        commit_only = [m for m in rig.net.sent[before:] if _commit_only(m, 1)]
        if lazy:
            assert commit_only == []
            assert all(len(rig.machines[i].data) >= 29 for i in (2, 3))
        else:
            # every write's commit goes out on its own, to each follower whose progress is
            # not paused at that moment (a slow ack under load may pause one): each commit
            # index reaches at least one follower, most reach both
            told = {m.commit for m in commit_only}
            assert set(written) <= told, sorted(set(written) - told)
            assert len(commit_only) >= 2 * 30 - 3, len(commit_only)

    run(main, tmp_path, commit_flush_ms=60_000 if lazy else 0, tick_ms=60_000)


def test_commit_flush_stays_quiet_while_appends_carry_the_commit(tmp_path: Path) -> None:
    """Writes 10 ms apart with a 50 ms flush timer: every commit index leaves with the
    next write's AppendEntries well within 50 ms, so the timer sends no message of its
    own until the writes stop; then the last commit index reaches both followers.

    A flush for write k's commit index needs 50 ms between that commit (after write k
    started) and write k+1's AppendEntries (before write k+1 finished), so only a span
    "start of k -> end of k+1" of 50 ms or more (a stalled box) may cost flushes: one
    per 50 ms of it, two messages each."""
    async def main(rig: Rig) -> None:
        await rig.net.drivers[1].campaign()
        leader = await rig.leader()
        loop = asyncio.get_running_loop()
        before = len(rig.net.sent)
        spans = []  # (start, end) of each write
        for k in range(40):
            start = loop.time()
            await leader.propose(f"k{k}={k}".encode())
            spans.append((start, loop.time()))
            await asyncio.sleep(0.01)
        during = [m for m in rig.net.sent[before:] if _commit_only(m, 1)]
        allowed = sum(2 * int((b[1] - a[0]) // 0.05) for a, b in itertools.pairwise(spans))
        assert len(during) <= allowed, (len(during), allowed)
        await until(lambda: all(m.index == leader.applied for m in rig.machines.values()))
        flushed = [m for m in rig.net.sent[before:] if _commit_only(m, 1)]
        assert {m.dst for m in flushed} == {2, 3}, "the last commit index went out on its own"
        assert all(m.data == rig.machines[1].data for m in rig.machines.values())

    run(main, tmp_path, commit_flush_ms=50, tick_ms=60_000)
