"""Prometheus /metrics of real `kvraft serve` processes: the values an operator graphs move
as clients write and read, on the leader and on the followers."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kvraft._pb.kvraft.v1 import admin_pb2 as apb

from .cluster import Cluster, Node, get, put, status_code, wait_until

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("metrics"), metrics=True)
    try:
        c.start()
        c.leader()
        yield c
    finally:
        c.close()


def scrape(node: Node) -> Samples:
    assert node.metrics is not None
    with urllib.request.urlopen(f"http://{node.metrics}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_leadership_gauges(cluster: Cluster) -> None:
    leader = cluster.leader()
    for n in cluster.live():
        m = scrape(n)
        assert value(m, "kvraft_server_is_leader") == (1 if n is leader else 0)
        assert value(m, "kvraft_server_has_leader") == 1
        assert value(m, "kvraft_server_leader_id") == leader.node_id
        assert value(m, "kvraft_server_term") == n.status().term
        assert value(m, "kvraft_server_leader_changes_seen_total") >= 1
        info = value(m, "kvraft_server_info", node_id=str(n.node_id), cluster_id="kvraft",
                     version=n.status().version)
        assert info == 1
        assert value(m, "process_resident_memory_bytes") > 0


def test_values_move_as_writes_and_reads_happen(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = cluster.followers(leader)[0]
    before, before_f = scrape(leader), scrape(follower)
    writes, reads = 20, 5
    for i in range(writes):
        put(leader, f"m{i}".encode(), b"v" * 100)
    for i in range(reads):
        get(leader, f"m{i}".encode())
    with pytest.raises(grpc.RpcError) as info:
        put(follower, b"m", b"to a follower")
    assert status_code(info.value) == grpc.StatusCode.FAILED_PRECONDITION
    index = leader.status().commit_index
    cluster.wait_applied(follower, index)
    after = scrape(leader)
    after_f = wait_until("follower metrics show the writes",
                         lambda: (m := scrape(follower))
                         and value(m, "kvraft_server_applied_index") >= index and m)

    def grew(name: str, m0: Samples = before, m1: Samples = after, **labels: str) -> float:
        return value(m1, name, **labels) - value(m0, name, **labels)

    assert grew("kvraft_server_proposals_committed_total") >= writes
    # one write at a time: the leader answers from predicted results (predictions.py)
    assert grew("kvraft_server_proposals_answered_predicted_total") >= 1
    # ... and sends each append at once to one follower only (quorum_first.py)
    assert grew("kvraft_network_appends_held_total") >= 1
    assert grew("kvraft_server_commit_index") >= writes
    assert grew("kvraft_server_applied_index") >= writes
    assert value(after, "kvraft_server_proposals_pending") == 0
    assert grew("kvraft_server_read_indexes_total") >= reads
    assert grew("kvraft_server_read_index_duration_seconds_count") >= 1
    # one durable write per Ready; with one client writing in turn, at least one each
    assert grew("kvraft_disk_wal_fsync_duration_seconds_count") >= writes
    assert grew("kvraft_server_apply_duration_seconds_count") >= 1
    assert grew("kvraft_disk_wal_entries_total") >= writes
    assert value(after, "kvraft_db_total_size_in_bytes") > 0
    grpc_put_ok = dict(grpc_type="unary", grpc_service="kvraft.v1.KV", grpc_method="Put",
                       grpc_code="OK")
    assert grew("grpc_server_handled_total", **grpc_put_ok) == writes
    for f in cluster.followers(leader):
        peer = str(f.node_id)
        assert grew("kvraft_network_peer_sent_messages_total", peer=peer) >= writes
        assert grew("kvraft_network_peer_sent_bytes_total", peer=peer) >= writes * 100
    # the follower: received the entries, applied them, refused the write
    assert grew("kvraft_network_peer_received_messages_total", before_f, after_f,
                peer=str(leader.node_id)) >= writes
    assert grew("kvraft_network_peer_received_bytes_total", before_f, after_f) >= writes * 100
    assert grew("kvraft_server_proposals_applied_total", before_f, after_f) >= writes
    assert grew("kvraft_server_proposals_failed_total", before_f, after_f) == 1
    refused = dict(grpc_put_ok, grpc_code="FAILED_PRECONDITION")
    assert grew("grpc_server_handled_total", before_f, after_f, **refused) == 1
    # the same counters in Admin Status
    stats = leader.status().stats
    assert stats["saves"] > 0 and stats["proposals_succeeded"] >= writes


def test_snapshot_counted(cluster: Cluster) -> None:
    leader = cluster.leader()
    before = scrape(leader)
    put(leader, b"snap", b"shot")
    leader.admin.TakeSnapshot(apb.TakeSnapshotRequest(), timeout=30)
    after = scrape(leader)
    name = "kvraft_snapshot_save_duration_seconds_count"
    assert value(after, name) == value(before, name) + 1
    assert value(after, "kvraft_server_snapshot_index") >= leader.status().snapshot_index > 0


def test_metrics_port_in_use_refuses_to_start(tmp_path: Path) -> None:
    c = Cluster(tmp_path, size=1, metrics=True)
    with socket.socket() as busy:
        host, port = (c.nodes[1].metrics or "").split(":")
        busy.bind((host, int(port)))
        busy.listen()
        try:
            with pytest.raises(AssertionError, match="cannot serve metrics on"):
                c.start()
        finally:
            c.close()
