"""The client's Batch streams under node crashes, pauses, short deadlines and close():
every call ends with a result or a typed error, close() leaves no task behind, and
asyncio has nothing to complain about (no task destroyed while pending, no async
generator closed while running, no coroutine reused)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from kvraft import Client
from kvraft.client import ClientError
from kvraft.cluster_launcher import LocalCluster
from tests.client.realcluster import heal, running_cluster

pytestmark = pytest.mark.integration

NOISE = ("was destroyed but it is pending", "already running", "cannot reuse",
         "never retrieved", "never awaited", "Exception ignored")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("lifecycle"))


def run_loop(main: Any) -> list[str]:
    """Run ``main()`` on a fresh loop the way asyncio.run does (shutting down async
    generators at the end), then collect garbage; return everything asyncio reported
    through the loop's exception handler or as an unraisable exception."""
    reports: list[str] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(f"{context.get('message')}: {context.get('exception')!r}")

    def unraisable(u: Any) -> None:
        reports.append(f"Exception ignored in {u.object!r}: {u.exc_value!r}")

    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(handler)
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        gc.collect()
    finally:
        sys.unraisablehook = old_hook
    return reports


async def load(c: Client, stop: asyncio.Event, outcomes: Counter[str], worker: int) -> None:
    """Puts and gets with short deadlines until ``stop``; some calls are abandoned by
    the caller's own (even shorter) deadline, as a test harness does."""
    i = 0
    while not stop.is_set():
        i += 1
        call = (c.put(f"life/{worker}", str(i), timeout=0.6) if i % 2
                else c.get(f"life/{worker}", timeout=0.6))
        try:
            if i % 7 == 0:
                await asyncio.wait_for(call, 0.05)
            else:
                await call
            outcomes["ok"] += 1
        except TimeoutError:
            outcomes["abandoned"] += 1
        except ClientError as e:
            outcomes[type(e).__name__] += 1


def test_crash_pause_and_close_leave_no_noise(cluster: LocalCluster,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    leader = heal(cluster)
    outcomes: Counter[str] = Counter()
    leftover: list[asyncio.Task[Any]] = []
    unfinished: list[str] = []

    async def phase(c: Client, seconds: float, fault: Any = None) -> None:
        stop = asyncio.Event()
        workers = [asyncio.create_task(load(c, stop, outcomes, w)) for w in range(48)]
        await asyncio.sleep(0.3)  # load in flight before the fault
        if fault is not None:
            fault()
        await asyncio.wait(workers, timeout=seconds)
        stop.set()
        done, pending = await asyncio.wait(workers, timeout=5)
        unfinished.extend(repr(t) for t in pending)
        for t in done:
            t.result()  # nothing but typed errors escaped a call

    async def main() -> None:
        c = Client(cluster.endpoints(), timeout=2, attempt_timeout=0.3)
        await c.put("life/warm", "x")
        await phase(c, 1.0, lambda: cluster.kill_node(leader))
        others = [i for i in cluster.spec.ids if i != leader]
        new_leader = await asyncio.to_thread(cluster.wait_for_leader, 10, others)
        await phase(c, 1.0, lambda: cluster.pause_node(new_leader))
        # close while calls are in flight against a cluster with no quorum
        stop = asyncio.Event()
        workers = [asyncio.create_task(load(c, stop, outcomes, w)) for w in range(16)]
        await asyncio.sleep(0.2)
        await c.close()
        await c.close()  # idempotent
        stop.set()
        done, pending = await asyncio.wait(workers, timeout=5)
        unfinished.extend(repr(t) for t in pending)
        for t in done:
            t.result()
        leftover.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())

    try:
        reports = run_loop(main)
    finally:
        heal(cluster)
    err = capfd.readouterr().err
    noise = [line for line in err.splitlines() if any(n in line for n in NOISE)]
    problems = unfinished + [repr(t) for t in leftover] + reports + noise
    assert not problems, "\n".join(problems)
    assert outcomes["ok"] > 0, outcomes
    assert sum(outcomes.values()) - outcomes["ok"] > 0, outcomes  # the faults were felt
