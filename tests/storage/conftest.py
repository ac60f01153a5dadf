"""Fixtures for the LogStore contract suite: one `kit` per implementation.

A kit opens a store in a directory and "reopens" it the way a restarted node would
(a new object over the same durable state; for the memory store, the same object).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvraft.storage.base import LogStore
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.memory import MemoryLogStore

CI = bool(os.environ.get("CI"))
DEEP = bool(os.environ.get("KVRAFT_DEEP"))


@dataclass
class Kit:
    name: str
    open: Callable[[Path], LogStore]  # open (or create) the store kept in this directory
    durable: bool  # True if reopen() builds a new object from disk


def _memory_kit() -> Kit:
    stores: dict[Path, MemoryLogStore] = {}

    def open_(path: Path) -> LogStore:
        return stores.setdefault(path, MemoryLogStore())

    return Kit("memory", open_, durable=False)


def _lmdb_kit() -> Kit:
    return Kit("lmdb", lambda path: LmdbLogStore(path, map_size=1 << 30), durable=True)


def _lmdb_short_tail_kit() -> Kit:
    # a view that keeps only the 3 newest entries in memory: reads mix both paths
    return Kit("lmdb-tail3", lambda path: LmdbLogStore(path, map_size=1 << 30, tail_entries=3),
               durable=True)


KITS: dict[str, Callable[[], Kit]] = {
    "memory": _memory_kit, "lmdb": _lmdb_kit, "lmdb-tail3": _lmdb_short_tail_kit,
}


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]()


@pytest.fixture
def store(kit: Kit, tmp_path: Path) -> Iterator[LogStore]:
    s = kit.open(tmp_path / "db")
    yield s
    s.close()


def reopen(kit: Kit, store: LogStore, path: Path) -> LogStore:
    """What a restarted node sees: close and open again (memory: the same object)."""
    if not kit.durable:
        return store
    store.close()
    return kit.open(path)
