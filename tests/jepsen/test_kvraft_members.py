"""The kvraft target's membership control against real processes: a removed node comes
back empty under a NEW member id (kvraft refuses a removed id), keeps it across restarts,
and the nemeses still address it as the same node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from jepsen_like.kvraft_target import KvraftCluster, _status

from kvraft.client import InvalidConfChange

pytestmark = pytest.mark.integration


async def eventually(what: str, check: Callable[[], Awaitable[bool]],
                     timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except Exception as exc:  # noqa: BLE001 - not caught up yet, leader change
            last = exc
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last})")


def test_a_removed_node_rejoins_under_a_new_member_id(tmp_path: Path) -> None:
    async def main() -> None:
        c = KvraftCluster(nodes=3, spares=1, net="proxy", tick_ms=25)
        await c.start_run(tmp_path)
        try:
            assert c.network is not None
            leader = await c.leader()
            node = next(n for n in c.ids if n != leader)
            await c.remove_member(node)
            await c.kill(node)
            with pytest.raises(InvalidConfChange, match="never reused"):
                await c._admin("add_member", node, c.network.listen_address(node))
            member = await c.add_member(node, learner=True)
            assert member == 5, "1-3 are the voters, 4 the spare: 5 is the first new id"
            await c.start_fresh(node)

            async def promoted() -> bool:
                await c.promote(node)
                return True

            await eventually("the re-added node to be promoted", promoted)
            assert await c.members() == {1: False, 2: False, 3: False}
            address = c.network.client_address(node)

            async def serves_as(member_id: int) -> bool:
                st = await _status(address)
                return st is not None and st.node_id == member_id and st.healthy

            await eventually(f"node {node} to serve as member {member}", lambda: serves_as(5))
            await c.kill(node)
            await c.start(node)  # a plain restart keeps the new id and its data
            await eventually("the restarted node", lambda: serves_as(5))
            await c._admin("transfer_leadership", 5)

            async def leads() -> bool:
                return await c.leader() == node  # reported as the node, not as member 5

            await eventually("member 5 to lead", leads)
        finally:
            await c.stop_run()

    asyncio.run(main())
