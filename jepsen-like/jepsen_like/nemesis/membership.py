"""Membership churn: add a learner and promote it; remove a voter and add it back under a
new member id.

The cluster layer implements ``MembershipControl`` (``kvraft_target.KvraftCluster`` via
the client's admin calls). The nemesis alternates two faults, each undone on stop so
every full cycle leaves the original number of voters:

- ``grow``: a spare node (provisioned, never a member) is added as a learner, started
  empty with ``--join``, and promoted to voter once it has caught up; on stop it is
  removed and stopped.
- ``shrink``: a voter is removed and stopped; on stop its data dir is wiped, it is
  added back as a learner under a NEW member id, started empty, and promoted.

Nodes here are machines; the cluster layer gives each membership of a node a member id
never used before (kvraft refuses a removed id: a node back under it with an empty data
dir would replay old memberships and could elect itself alone). The log records it.

Promotion is retried until ``promote_seconds`` pass (a learner far behind may be refused);
the log records what happened at each step.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from .schedule import NemesisContext


class MembershipControl(Protocol):
    def spare_ids(self) -> list[int]:
        """Nodes provisioned for joining (network set up, process not running)."""
        ...

    async def members(self) -> dict[int, bool]:
        """Current members: node id -> True if a learner."""
        ...

    async def add_member(self, node: int, *, learner: bool) -> int:
        """Add ``node`` under a member id never used before (its own number the first
        time); returns that id."""
        ...

    async def promote(self, node: int) -> None:
        ...

    async def remove_member(self, node: int) -> None:
        ...

    async def start_fresh(self, node: int) -> None:
        """Wipe the node's data dir and start it as a joining member (``--join``)."""
        ...


class MemberNemesis:
    """See the module docstring. ``ctx.cluster`` must also be a MembershipControl."""

    name = "member"

    def __init__(self, promote_seconds: float = 10.0) -> None:
        self.promote_seconds = promote_seconds  # retry window for promotion
        self.turn = 0  # alternates grow / shrink
        self.pending: tuple[str, int] | None = None  # the active fault: (kind, node)

    @staticmethod
    def _control(ctx: NemesisContext) -> MembershipControl:
        ctl = ctx.cluster
        if not hasattr(ctl, "spare_ids") or not hasattr(ctl, "start_fresh"):
            raise RuntimeError("member nemesis needs a cluster with membership control")
        return ctl  # type: ignore[return-value]

    async def _promote(self, ctl: MembershipControl, node: int) -> str:
        deadline = time.monotonic() + self.promote_seconds
        last = ""
        while time.monotonic() < deadline:
            try:
                await ctl.promote(node)
                return "promoted"
            except Exception as exc:  # not caught up yet, leader change: try again
                last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5)
        return f"not promoted within {self.promote_seconds:g}s ({last})"

    async def start(self, ctx: NemesisContext) -> dict[str, Any]:
        ctl = self._control(ctx)
        members = await ctl.members()
        voters = [n for n, learner in members.items() if not learner]
        spares = [n for n in ctl.spare_ids() if n not in members]
        self.turn += 1
        if spares and (self.turn % 2 == 1 or len(voters) < 2):
            node = ctx.rng.choice(spares)
            member = await ctl.add_member(node, learner=True)
            self.pending = ("grow", node)
            await ctl.start_fresh(node)
            return {"action": "grow", "node": node, "member_id": member,
                    "result": await self._promote(ctl, node)}
        node = ctx.rng.choice(voters)
        await ctl.remove_member(node)
        self.pending = ("shrink", node)
        await ctx.cluster.kill(node)
        return {"action": "shrink", "node": node, "voters_before": sorted(voters)}

    async def stop(self, ctx: NemesisContext) -> dict[str, Any]:
        if self.pending is None:
            return {}
        ctl = self._control(ctx)
        kind, node = self.pending
        self.pending = None
        if kind == "grow":
            await ctl.remove_member(node)
            await ctx.cluster.kill(node)
            return {"action": "remove", "node": node}
        member = await ctl.add_member(node, learner=True)
        await ctl.start_fresh(node)
        return {"action": "re-add", "node": node, "member_id": member,
                "result": await self._promote(ctl, node)}
