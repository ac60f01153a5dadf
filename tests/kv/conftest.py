"""Fixtures for the KV state machine tests: a machine over a fresh LMDB environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import lmdb
import pytest

from kvraft.kv.machine import KvStateMachine
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore

MachineFactory = Callable[..., KvStateMachine]


@pytest.fixture
def make_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MachineFactory]:
    """Open (or reopen, given the same ``path``) a machine; envs are closed at teardown."""
    envs: dict[Path, lmdb.Environment] = {}

    def make(path: Path | None = None, **kwargs: int) -> KvStateMachine:
        path = path or tmp_path_factory.mktemp("node")
        if path in envs:  # "restart": a new machine over the same durable state
            envs.pop(path).close()
        env = lmdb.open(str(path / "db"), max_dbs=16, map_size=1 << 30, sync=False)
        envs[path] = env
        return KvStateMachine(LmdbStateStore(env), SnapshotDir(path / "snap"), **kwargs)

    yield make
    for env in envs.values():
        env.close()


@pytest.fixture
def machine(make_machine: MachineFactory) -> KvStateMachine:
    return make_machine()
