"""Targets a campaign can run against.

- ``fake``: the linearizable in-process ``MemoryStore`` with simulated faults — a
  pipeline self-test: every verdict must be valid;
- ``fake-broken:<mode>`` (stale-reads, lost-writes, lost-adds): a store that breaks a
  promise — every verdict must be invalid;
- ``kvraft``: a real cluster of ``kvraft serve`` processes (see ``kvraft_target``).
"""

from __future__ import annotations

import random
from typing import cast, get_args

from .campaign import Target
from .client import KVClient
from .fakes import BrokenMode, BrokenStore, FakeCluster, FakeNetwork, MemoryStore


def fake_target(spec: str, seed: int, nodes: int = 3) -> Target:
    """``fake`` or ``fake-broken:<mode>``. Raises ValueError for an unknown spec."""
    rng = random.Random(seed)
    store: MemoryStore
    if spec == "fake":
        store = MemoryStore(rng, latency=0.002, fault_rate=0.02)
    elif spec.startswith("fake-broken:"):
        mode = spec.split(":", 1)[1]
        if mode not in get_args(BrokenMode):
            raise ValueError(f"unknown broken mode {mode!r} (one of {get_args(BrokenMode)})")
        store = BrokenStore(rng, cast(BrokenMode, mode))
    else:
        raise ValueError(f"unknown fake target {spec!r}")

    async def factory(worker: int) -> KVClient:
        return store

    async def settle() -> None:
        await store.settle()

    return Target(name=spec, factory=factory, cluster=FakeCluster(store, nodes),
                  network=FakeNetwork(store), settle=settle, info={"network": "fake"})
