"""The nemesis schedule alternates faults and heals, logs them, and always heals."""

from __future__ import annotations

import asyncio
import random

from jepsen_like.fakes import FakeCluster, FakeNetwork, MemoryStore
from jepsen_like.nemesis.membership import MemberNemesis
from jepsen_like.nemesis.schedule import (
    KillNemesis,
    NemesisContext,
    NemesisLog,
    PartitionNemesis,
    PauseNemesis,
    intervals,
    run_schedule,
)


def setup() -> tuple[NemesisContext, FakeCluster, FakeNetwork]:
    store = MemoryStore(random.Random(0), latency=0)
    cluster, net = FakeCluster(store, 5), FakeNetwork(store)
    ticks = iter(range(10**9))
    ctx = NemesisContext(cluster, net, random.Random(0), NemesisLog(None, lambda: next(ticks)))
    return ctx, cluster, net


def test_schedule_alternates_and_ends_healed() -> None:
    ctx, cluster, net = setup()
    nemeses = [PartitionNemesis(["halves"]), KillNemesis(["minority"]), PauseNemesis(["one"])]
    faults = asyncio.run(run_schedule(nemeses, ctx, duration=1.2, fault_seconds=0.1,
                                      quiet_seconds=0.1))
    assert faults >= 3
    kinds = [(e["type"], e["nemesis"]) for e in ctx.log.events]
    assert kinds[:6] == [("start", "partition"), ("stop", "partition"), ("start", "kill"),
                         ("stop", "kill"), ("start", "pause"), ("stop", "pause")]
    assert kinds[-1] == ("heal-all", "all")
    kill = next(e for e in ctx.log.events if e["type"] == "start" and e["nemesis"] == "kill")
    assert len(kill["nodes"]) == 2, "a minority of 5"
    spans = intervals(ctx.log.events)
    assert len(spans) == faults and all(s.stop is not None and s.stop > s.start for s in spans)
    assert not net.current and not cluster.stopped


def test_cancelled_schedule_still_heals() -> None:
    ctx, cluster, net = setup()

    async def main() -> None:
        task = asyncio.create_task(run_schedule([KillNemesis(["all"])], ctx, duration=60,
                                                fault_seconds=30, quiet_seconds=0))
        deadline = asyncio.get_running_loop().time() + 5
        while not cluster.stopped:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert not cluster.stopped
    assert ctx.log.events[-1]["type"] == "heal-all"


def test_a_failing_nemesis_is_logged_and_the_schedule_goes_on() -> None:
    ctx, cluster, _ = setup()
    ctx.network = None  # partitions impossible
    asyncio.run(run_schedule([PartitionNemesis(), KillNemesis(["one"])], ctx, duration=0.8,
                             fault_seconds=0.1, quiet_seconds=0.1))
    types = [(e["type"], e["nemesis"]) for e in ctx.log.events]
    assert ("error", "partition") in types and ("start", "kill") in types


def test_member_churn_grows_and_shrinks_and_restores_the_voters() -> None:
    ctx, cluster, _ = setup()
    faults = asyncio.run(run_schedule([MemberNemesis(promote_seconds=1)], ctx, duration=1.0,
                                      fault_seconds=0.1, quiet_seconds=0.1))
    assert faults >= 2
    actions = [(e["type"], e.get("action")) for e in ctx.log.events if e["nemesis"] == "member"]
    assert actions[:4] == [("start", "grow"), ("stop", "remove"), ("start", "shrink"),
                           ("stop", "re-add")]
    assert all(e.get("result", "promoted") == "promoted" for e in ctx.log.events)
    assert cluster.membership == {n: False for n in (1, 2, 3, 4, 5)}, "voters restored"
    shrunk = next(e["node"] for e in ctx.log.events if e.get("action") == "shrink")
    assert cluster.fresh_starts[:2] == [6, shrunk], "the spare, then the re-added voter"
    ids = [e["member_id"] for e in ctx.log.events if e.get("action") in ("grow", "re-add")]
    assert ids[:2] == [6, 7] and len(set(ids)) == len(ids), "member ids are never reused"
