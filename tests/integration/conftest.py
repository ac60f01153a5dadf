"""Fixtures that start real kvraft clusters; every process is killed when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh, started 3-node cluster with a known leader."""
    c = Cluster(tmp_path)
    try:
        c.start()
        c.leader()
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One 3-node cluster shared by the tests of a module that do not break it."""
    c = Cluster(tmp_path_factory.mktemp("shared"))
    try:
        c.start()
        c.leader()
        yield c
    finally:
        c.close()
