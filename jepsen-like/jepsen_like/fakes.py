"""In-process stores implementing ``KVClient``, to test the harness without a cluster.

``MemoryStore`` is linearizable by construction: every operation takes effect atomically
at one instant between its call and its return (the event loop is single-threaded).
With ``fault_rate`` > 0 it also produces the outcomes a real cluster does: definite
failures (nothing applied) and timeouts (applied now, later or never).

``BrokenStore`` breaks a promise on purpose, so the checkers must catch it:

- ``stale-reads``: reads at any level are served from a replica that lags behind;
- ``lost-writes``: some acknowledged writes are never applied;
- ``lost-adds``: every set read first drops one acknowledged element from the store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Literal

from .client import Consistency, DefiniteFailure

BrokenMode = Literal["stale-reads", "lost-writes", "lost-adds"]


class Unreachable(Exception):
    """The fake cluster is down (all nodes killed or paused): outcome unknown."""


class MemoryStore:
    """A linearizable in-memory KV store with simulated latency and faults."""

    def __init__(self, rng: random.Random, *, latency: float = 0.002,
                 fault_rate: float = 0.0) -> None:
        self.rng = rng  # latency and fault choices; seeded for replay
        self.latency = latency  # mean seconds before and after the effect
        self.fault_rate = fault_rate  # probability of a definite failure or a timeout
        self.data: dict[str, str] = {}  # the store's state
        self.down = False  # set by FakeCluster: every call fails with Unreachable
        self._background: set[asyncio.Task[None]] = set()  # late effects of timeouts

    async def _delay(self) -> None:
        await asyncio.sleep(self.rng.expovariate(1 / self.latency) if self.latency else 0)

    async def _fault(self, effect: object) -> None:
        """Maybe fail before the effect; maybe time out around it. Raises, or returns."""
        if self.down:
            raise Unreachable("fake cluster is down")
        roll = self.rng.random()
        if roll < self.fault_rate / 2:
            raise DefiniteFailure("fake: refused before proposing")
        if roll < self.fault_rate:
            fate = self.rng.random()
            if fate < 1 / 3 and callable(effect):
                effect()  # applied, but the answer is lost
            elif fate < 2 / 3 and callable(effect):
                task = asyncio.get_running_loop().create_task(self._late(effect))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            raise TimeoutError("fake: answer lost")

    async def _late(self, effect: object) -> None:
        await asyncio.sleep(self.rng.uniform(0, 20 * self.latency))
        if callable(effect):
            effect()

    async def read(self, key: str, consistency: Consistency) -> str | None:
        await self._delay()
        await self._fault(None)
        value = self.data.get(key)
        await self._delay()
        return value

    async def write(self, key: str, value: str) -> None:
        await self._delay()
        await self._fault(lambda: self.data.__setitem__(key, value))
        self.data[key] = value
        await self._delay()

    async def cas(self, key: str, old: str | None, new: str) -> bool:
        def apply() -> bool:
            if self.data.get(key) != old:
                return False
            self.data[key] = new
            return True

        await self._delay()
        await self._fault(apply)
        ok = apply()
        await self._delay()
        return ok

    async def scan(self, prefix: str, consistency: Consistency) -> list[tuple[str, str]]:
        await self._delay()
        await self._fault(None)
        items = sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))
        await self._delay()
        return items

    async def close(self) -> None:
        return None

    async def settle(self) -> None:
        """Wait for every late effect of a timed-out write to land."""
        while self._background:
            await asyncio.gather(*list(self._background))


class BrokenStore(MemoryStore):
    """A MemoryStore that breaks one promise (see the module docstring)."""

    def __init__(self, rng: random.Random, mode: BrokenMode, *, latency: float = 0.002,
                 rate: float = 0.1) -> None:
        super().__init__(rng, latency=latency)
        self.mode = mode  # which promise to break
        self.rate = rate  # how often
        self.replica: dict[str, str] = {}  # stale-reads: a lagging copy of data

    async def read(self, key: str, consistency: Consistency) -> str | None:
        if self.mode != "stale-reads":
            return await super().read(key, consistency)
        await self._delay()
        if self.rng.random() < self.rate:
            self.replica = dict(self.data)  # the replica catches up now and then
        value = self.replica.get(key)
        await self._delay()
        return value

    async def write(self, key: str, value: str) -> None:
        if self.mode == "lost-writes" and self.rng.random() < self.rate:
            await self._delay()
            return  # acknowledged, never applied
        await super().write(key, value)

    async def scan(self, prefix: str, consistency: Consistency) -> list[tuple[str, str]]:
        if self.mode == "lost-adds":
            victims = [k for k in self.data if k.startswith(prefix)]
            if victims:  # every set read first drops one acknowledged element
                del self.data[self.rng.choice(victims)]
        return await super().scan(prefix, consistency)


class FakeNetwork:
    """A ``Network`` for the fakes: while any link is cut, a share of the store's
    operations fail or time out (as clients of a partitioned cluster see)."""

    kind = "fake"

    def __init__(self, store: MemoryStore, cut_fault_rate: float = 0.5) -> None:
        self.store = store
        self.cut_fault_rate = cut_fault_rate  # fault rate while partitioned
        self.base_rate = store.fault_rate  # fault rate when healed
        self.current: frozenset[tuple[int, int]] = frozenset()  # links "cut"

    def listen_address(self, node: int) -> str:
        return f"fake:{node}"

    def peer_addresses(self, node: int) -> dict[int, str]:
        return {}

    def client_address(self, node: int) -> str:
        return f"fake:{node}"

    def wrap(self, node: int, argv: Sequence[str]) -> list[str]:
        return list(argv)

    async def setup(self) -> None:
        return None

    async def cut(self, links: frozenset[tuple[int, int]]) -> None:
        self.current = frozenset(links)
        self.store.fault_rate = self.cut_fault_rate if links else self.base_rate

    async def heal(self) -> None:
        await self.cut(frozenset())

    async def close(self) -> None:
        return None


class FakeCluster:
    """``ProcessControl`` and ``MembershipControl`` over a MemoryStore: killing or pausing
    a majority of the fake nodes makes the store unreachable, so nemesis schedules run
    end to end in tests. Membership is bookkeeping only."""

    def __init__(self, store: MemoryStore, nodes: int = 3, spares: int = 1) -> None:
        self.store = store
        self.nodes = list(range(1, nodes + 1))  # node ids
        self.stopped: set[int] = set()  # killed or paused nodes
        self.spares = list(range(nodes + 1, nodes + spares + 1))  # may join later
        self.membership = {n: False for n in self.nodes}  # member -> is a learner
        self.fresh_starts: list[int] = []  # nodes started empty, in order
        self.used_ids = set(self.nodes)  # member ids given so far; never given again

    def spare_ids(self) -> list[int]:
        return list(self.spares)

    async def members(self) -> dict[int, bool]:
        return dict(self.membership)

    async def add_member(self, node: int, *, learner: bool) -> int:
        if node in self.membership:
            raise ValueError(f"node {node} is already a member")
        self.membership[node] = learner
        member = node if node not in self.used_ids else max(self.used_ids | {*self.spares}) + 1
        self.used_ids.add(member)
        return member

    async def promote(self, node: int) -> None:
        self.membership[node] = False

    async def remove_member(self, node: int) -> None:
        del self.membership[node]

    async def start_fresh(self, node: int) -> None:
        self.fresh_starts.append(node)
        await self.start(node)

    def node_ids(self) -> list[int]:
        return list(self.nodes)

    async def leader(self) -> int | None:
        up = [n for n in self.nodes if n not in self.stopped]
        return up[0] if len(up) * 2 > len(self.nodes) else None

    def _update(self) -> None:
        self.store.down = len(self.stopped) * 2 >= len(self.nodes) + 1

    async def kill(self, node: int) -> None:
        self.stopped.add(node)
        self._update()

    async def start(self, node: int) -> None:
        self.stopped.discard(node)
        self._update()

    async def pause(self, node: int) -> None:
        await self.kill(node)

    async def resume(self, node: int) -> None:
        await self.start(node)

    def is_running(self, node: int) -> bool:
        return node not in self.stopped

    def data_dir(self, node: int) -> None:
        return None
