"""The driver's I/O thread and the small writes that skip it (kvraft/runtime/io_thread.py):
a small write runs on the loop only when nothing is queued on the thread, so storage
jobs never reorder; and three drivers writing that way keep every acknowledged write
across a leader crash."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from kvraft.runtime.io_thread import IoThread

from .test_driver_cluster import Rig, put_all, run, until


def test_a_small_write_runs_on_the_loop_only_when_the_thread_is_idle() -> None:
    async def t() -> None:
        io = IoThread("test-io", inline_entries=4)
        here = threading.get_ident()
        done: list[str] = []

        def job(name: str) -> int:
            done.append(name)
            return threading.get_ident()

        assert await io.write_small(3, job, "small") == here  # idle: on the loop
        assert await io.write_small(5, job, "large") != here  # too many entries
        assert await io.write_small(0, job, "no entries") != here  # a hard state or snapshot
        gate = threading.Event()
        blocked = io.run(lambda: gate.wait(5) and done.append("blocked"))
        behind = io.write_small(1, job, "behind")  # the thread is busy: queue behind it
        await asyncio.sleep(0.05)
        assert not behind.done(), "a small write overtook a job queued before it"
        gate.set()
        assert await behind != here
        await blocked
        assert done == ["small", "large", "no entries", "blocked", "behind"]
        assert await io.write_small(1, job, "idle again") == here
        io.shutdown()

    asyncio.run(t())


def test_thread_only_when_inline_writes_are_off_and_errors_reach_the_caller() -> None:
    async def t() -> None:
        io = IoThread("test-io", inline_entries=0)
        assert await io.write_small(1, threading.get_ident) != threading.get_ident()
        io.shutdown()
        inline = IoThread("test-io", inline_entries=4)

        def broken() -> None:
            raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            await inline.write_small(1, broken)
        inline.shutdown()

    asyncio.run(t())


def test_small_writes_on_the_loop_keep_acknowledged_writes_across_a_leader_crash(
    tmp_path: Path,
) -> None:
    """One write at a time (every write small enough to run on the loop) with
    quorum-first replication, as a server runs; the leader crashes and comes back."""
    async def main(rig: Rig) -> None:
        leader = await rig.leader()
        for k in range(30):
            await leader.propose(f"k{k}={k}".encode())
        assert leader.stats.appends_held > 0  # quorum-first was on
        old = leader.node_id
        await rig.crash(old)
        new = await rig.leader()
        await put_all(new, range(30, 60))  # answered once applied: all before it too
        assert all(rig.machines[new.node_id].data.get(f"k{k}") == str(k) for k in range(30))
        rig.boot(old)
        await until(lambda: rig.machines[old].index == new.applied
                    and len(rig.machines[old].data) == 60)
        assert rig.machines[old].data == rig.machines[new.node_id].data

    run(main, tmp_path, inline_write_entries=4, quorum_first_ms=10)
