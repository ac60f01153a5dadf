"""Workloads: which operations the workers invoke, and which checker judges them.

Register (``register``): independent registers; workers are split into groups of
``group_size`` and each group works on one key at a time, moving to a fresh key after
``ops_per_key`` invocations (like Jepsen's independent keys). This bounds the number of
clients that contend on a key — the linearizability search is exponential in that number
— while the history as a whole grows without bound. Writes and cas write unique values;
cas expects a value recently written or read on the key, so some succeed.

Set (``set``): workers add unique elements to one set (element ``e`` of set ``s`` is
the key ``s/e``), and now and then read the whole set (a prefix scan). After the heal,
final reads must contain every acknowledged element.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import linearizability, sets
from .client import Consistency, KVClient
from .history import Op


@dataclass(frozen=True, slots=True)
class Invocation:
    f: str  # read / write / cas / add / read-set
    key: str
    value: Any  # write value, [old, new] for cas, element for add, None for reads
    consistency: Consistency | None = None  # reads only
    final: bool = False  # a final read after the heal phase


class Workload(Protocol):
    name: str

    def next(self, worker: int, rng: random.Random) -> Invocation:
        """The next operation for ``worker`` (0 <= worker < concurrency)."""
        ...

    def observe(self, inv: Invocation, outcome: str, result: Any) -> None:
        """Called with every completion (outcome ok / fail / info, a read's result)."""
        ...

    def final_reads(self) -> list[Invocation]:
        """Reads to perform after the heal phase."""
        ...

    def check(self, ops: Sequence[Op], budget: float) -> dict[str, dict[str, Any]]:
        """Checker name -> result JSON (each has a "verdict")."""
        ...


async def perform(client: KVClient, inv: Invocation) -> tuple[bool, Any]:
    """Run one invocation. Returns (took effect, result); raises as the client does."""
    level: Consistency = inv.consistency or "linearizable"
    if inv.f == "read":
        return True, await client.read(inv.key, level)
    if inv.f == "write":
        await client.write(inv.key, inv.value)
        return True, None
    if inv.f == "cas":
        old, new = inv.value
        return await client.cas(inv.key, old, new), None
    if inv.f == "add":
        await client.write(f"{inv.key}/{inv.value}", inv.value)
        return True, None
    if inv.f == "read-set":
        items = await client.scan(f"{inv.key}/", level)
        return True, [v for _, v in items]
    raise ValueError(f"unknown operation {inv.f!r}")


class RegisterWorkload:
    """Read / write / cas over many independent keys (see module docstring)."""

    name = "register"

    def __init__(self, *, concurrency: int, group_size: int = 5, ops_per_key: int = 300,
                 consistency: Consistency = "linearizable",
                 mix: tuple[int, int, int] = (2, 1, 1)) -> None:
        self.group_size = max(1, group_size)  # clients per key
        self.ops_per_key = ops_per_key  # invocations before a group moves to a new key
        self.consistency = consistency  # level of every read
        self.mix = mix  # relative weights of read, write, cas
        groups = (concurrency + self.group_size - 1) // self.group_size
        self._key_no = [0] * groups  # group -> index of its current key
        self._used = [0] * groups  # group -> invocations on its current key
        self._next_value = 0  # values are unique: a global counter
        self._recent: dict[str, deque[str]] = {}  # key -> values lately written / read
        self.keys: list[str] = []  # every key used, in first-use order

    def _key(self, worker: int) -> str:
        g = worker // self.group_size
        if self._used[g] >= self.ops_per_key:
            self._key_no[g] += 1
            self._used[g] = 0
        self._used[g] += 1
        key = f"jl/r{g}-{self._key_no[g]}"
        if key not in self._recent:
            self._recent[key] = deque(maxlen=4)
            self.keys.append(key)
        return key

    def next(self, worker: int, rng: random.Random) -> Invocation:
        key = self._key(worker)
        f = rng.choices(("read", "write", "cas"), self.mix)[0]
        if f == "read":
            return Invocation("read", key, None, self.consistency)
        value = str(self._next_value)
        self._next_value += 1
        if f == "write":
            return Invocation("write", key, value)
        recent = self._recent[key]
        old = rng.choice(list(recent)) if recent else None
        return Invocation("cas", key, [old, value])

    def observe(self, inv: Invocation, outcome: str, result: Any) -> None:
        recent = self._recent.get(inv.key)
        if recent is None or outcome != "ok":
            return
        if inv.f == "read" and result is not None:
            recent.append(result)
        elif inv.f == "write":
            recent.append(inv.value)
        elif inv.f == "cas":
            recent.append(inv.value[1])

    def final_reads(self) -> list[Invocation]:
        return [Invocation("read", k, None, "linearizable", final=True) for k in self.keys]

    def check(self, ops: Sequence[Op], budget: float) -> dict[str, dict[str, Any]]:
        return {"linearizable": linearizability.check(ops, budget=budget).to_json()}


class SetWorkload:
    """Unique adds to one set, periodic reads, final reads (see module docstring)."""

    name = "set"

    def __init__(self, *, set_name: str = "jl/set", read_every: int = 50,
                 consistency: Consistency = "linearizable") -> None:
        self.set_name = set_name  # key prefix of the set's elements
        self.read_every = read_every  # one read-set per this many invocations
        self.consistency = consistency  # level of the intermediate reads
        self._n = 0  # invocations so far; elements are numbered by it

    def next(self, worker: int, rng: random.Random) -> Invocation:
        self._n += 1
        if self.read_every and self._n % self.read_every == 0:
            return Invocation("read-set", self.set_name, None, self.consistency)
        return Invocation("add", self.set_name, f"{self._n:09d}")

    def observe(self, inv: Invocation, outcome: str, result: Any) -> None:
        return None

    def final_reads(self) -> list[Invocation]:
        return [Invocation("read-set", self.set_name, None, "linearizable", final=True)]

    def check(self, ops: Sequence[Op], budget: float) -> dict[str, dict[str, Any]]:
        return {"set": sets.check(ops).to_json()}


def make_workload(name: str, *, concurrency: int, consistency: Consistency,
                  group_size: int = 5, ops_per_key: int = 300) -> Workload:
    if name == "register":
        return RegisterWorkload(concurrency=concurrency, group_size=group_size,
                                ops_per_key=ops_per_key, consistency=consistency)
    if name == "set":
        return SetWorkload(consistency=consistency)
    raise ValueError(f"unknown workload {name!r} (register, set)")
