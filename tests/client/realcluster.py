"""Helpers for tests that run real `kvraft serve` processes through the launcher."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from kvraft.cluster_launcher import LocalCluster, ephemeral_spec

T = TypeVar("T")


def start_cluster(directory: Path, size: int = 3, **spec_options: object) -> LocalCluster:
    """A cluster of ``size`` nodes on free loopback ports with its data in ``directory``,
    started, with a leader elected."""
    spec = ephemeral_spec(size, directory, **spec_options)  # type: ignore[arg-type]
    cluster = LocalCluster(spec)
    cluster.start(timeout=30)
    return cluster


def running_cluster(directory: Path, size: int = 3) -> Iterator[LocalCluster]:
    """For module fixtures: yields a started cluster, stops it afterwards."""
    cluster = start_cluster(directory, size)
    try:
        yield cluster
    finally:
        cluster.stop(timeout=10)


def heal(cluster: LocalCluster) -> int:
    """Resume paused nodes, restart stopped ones, wait until all agree on a leader."""
    for node_id, proc in list(cluster.nodes.items()):
        if proc.paused:
            cluster.resume_node(node_id)
    for node_id in cluster.spec.ids:
        if node_id not in cluster.running_ids():
            cluster.start_node(node_id)
    leader = cluster.wait_for_leader(30)
    wait_for(lambda: all((st := cluster.status(i)) is not None and st.leader_id == leader
                         for i in cluster.spec.ids) or None, 30, "every node to follow")
    return leader


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
