"""Bounded-staleness reads (STALE + max_staleness_ms) never return state older than the
bound, also on a follower that just restarted behind the leader.

A write acknowledged more than ``max_staleness_ms`` before a bounded read started must be
visible to that read; the node may refuse (UNAVAILABLE "too stale") instead. A restarted
follower hears heartbeats at once, but they only carry the commit index the leader knows
it holds, and queued messages may be old: neither proves its state fresh.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb

from .cluster import Cluster, get, put, status_code

pytestmark = pytest.mark.integration

BOUND_MS = 300


def test_restarted_follower_never_serves_a_bounded_read_older_than_the_bound(
    tmp_path: Path,
) -> None:
    c = Cluster(tmp_path)
    try:
        c.start()
        leader = c.leader()
        put(leader, b"b/k", b"old")
        follower = c.followers(leader)[0]
        c.wait_applied(follower, leader.status().commit_index)
        c.kill(follower.node_id)
        for i in range(20):  # the follower misses these
            put(leader, b"b/k", b"new%d" % i)
        acked = time.monotonic()  # the last write was acknowledged by now
        c.start(follower.node_id)
        served: list[bytes] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(served) < 20:
            started = time.monotonic()
            try:
                r = get(follower, b"b/k", consistency=pb.STALE, max_staleness_ms=BOUND_MS)
            except grpc.RpcError as exc:
                assert status_code(exc) == grpc.StatusCode.UNAVAILABLE, exc
                continue
            if started - acked > BOUND_MS / 1000:  # "new19" is older than the bound
                assert r.kvs[0].value == b"new19", (r.kvs[0].value, started - acked)
                served.append(r.kvs[0].value)
        assert served, "the follower never served a bounded read once caught up"
    finally:
        c.close()
