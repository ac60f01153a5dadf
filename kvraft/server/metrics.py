"""Prometheus metrics of one node, served at ``http://<metrics address>/metrics``.

Modelled on etcd's: leadership (``kvraft_server_is_leader``, ``has_leader``,
``leader_changes_seen_total``), progress (``term``, ``commit_index``, ``applied_index``),
proposals (committed / applied / pending / failed / overloaded), ReadIndex reads, disk
latency histograms (``kvraft_disk_wal_fsync_duration_seconds``: the log write with fsync
of one Ready; ``kvraft_server_apply_duration_seconds``; snapshot save and restore), peer
traffic (``kvraft_network_peer_*`` by peer), gRPC calls by method and code
(``grpc_server_handled_total``), the database size, and the process collectors.

Nothing here runs on the hot path. Every value is read when Prometheus scrapes: the
collector copies the counters the runtime, transport and servicers keep anyway (plain
ints and lock-free histograms) into metric families. The HTTP listener is
prometheus_client's, on its own thread; reading ints and copying small dicts from it is
safe under the GIL, and a value may be one Ready behind another (as in any scrape).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from kvraft import __version__
from kvraft.core.types import Role
from kvraft.runtime.driver import Driver
from kvraft.runtime.histogram import Histogram
from kvraft.server.grpc_metrics import GrpcMetrics
from kvraft.server.timing import DiskTimings
from kvraft.transport.peer import PeerStats, PeerTransport
from kvraft.transport.service import RaftService


@dataclass(frozen=True, slots=True)
class MetricSources:
    """Where the collector reads from; every part is owned by the Node."""

    node_id: int
    cluster_id: str
    driver: Driver
    transport: PeerTransport
    raft_service: RaftService
    grpc: GrpcMetrics
    disk: DiskTimings
    db_size: Callable[[], int]  # bytes of the LMDB data file; may raise once closed


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets, _count, total = h.cumulative()
    return HistogramMetricFamily(
        name, doc, buckets=[(_le(b), n) for b, n in buckets], sum_value=total
    )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def _copy(read: Callable[[], dict[Any, Any]]) -> dict[Any, Any]:
    """Copy a dict the event loop may be resizing meanwhile (a rare membership change)."""
    for _ in range(3):
        try:
            return dict(read())
        except RuntimeError:  # "dictionary changed size during iteration": try again
            continue
    return {}


class NodeCollector:
    """A prometheus_client collector: builds every kvraft metric at scrape time."""

    def __init__(self, sources: MetricSources) -> None:
        self.s = sources

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield from self._proposals_and_reads()
        yield from self._disk()
        yield from self._network()
        yield from self._grpc()

    def _server(self) -> Iterator[Metric]:
        s, d = self.s, self.s.driver
        info = InfoMetricFamily("kvraft_server", "This node: id, cluster and version.")
        info.add_metric([], {"node_id": str(s.node_id), "cluster_id": s.cluster_id,
                             "version": __version__})
        yield info
        yield _gauge("kvraft_server_is_leader", "1 if this node is the leader.",
                     d.role == Role.LEADER)
        yield _gauge("kvraft_server_has_leader", "1 if this node knows a leader.", d.leader != 0)
        yield _gauge("kvraft_server_leader_id", "The leader this node knows (0: none).",
                     d.leader)
        yield _counter("kvraft_server_leader_changes_seen",
                       "Times this node saw a new leader.", d.stats.leader_changes)
        yield _gauge("kvraft_server_term", "The node's current Raft term.", d.term)
        yield _gauge("kvraft_server_commit_index", "Highest log index known committed.",
                     d.commit)
        yield _gauge("kvraft_server_applied_index", "Highest log index applied here.",
                     d.applied)
        snap = d.latest_snapshot
        yield _gauge("kvraft_server_snapshot_index", "Log index of the newest local snapshot.",
                     snap.meta.index if snap is not None else 0)
        yield _counter("kvraft_server_readys", "Ready batches handled.", d.stats.readys)
        yield _gauge("kvraft_server_fatal", "1 if the node stopped on a fatal error.",
                     d.fatal is not None)

    def _proposals_and_reads(self) -> Iterator[Metric]:
        d = self.s.driver
        c = d.counters()
        yield _counter("kvraft_server_proposals_committed",
                       "Proposals made on this node that committed and applied.",
                       c["proposals_succeeded"])
        yield _counter("kvraft_server_proposals_applied",
                       "Log entries applied to this node's state machine.",
                       d.stats.entries_applied)
        yield _counter("kvraft_server_proposals_answered_predicted",
                       "Proposals answered when their entry committed, from a result "
                       "predicted before the apply (leader, low load).",
                       d.stats.answered_predicted)
        yield _gauge("kvraft_server_proposals_pending", "Proposals in flight on this node.",
                     c["proposals_pending"])
        yield _gauge("kvraft_server_proposals_pending_bytes",
                     "Bytes of the proposals in flight.", c["proposals_pending_bytes"])
        yield _counter("kvraft_server_proposals_failed",
                       "Proposals refused (not leader...) or lost (outcome unknown).",
                       c["proposals_failed"])
        yield _counter("kvraft_server_proposals_overloaded",
                       "Proposals refused by the inflight limits (RESOURCE_EXHAUSTED).",
                       c["proposals_overloaded"])
        yield _counter("kvraft_server_read_indexes", "ReadIndex (linearizable/lease) reads.",
                       c["reads_requested"])
        yield _counter("kvraft_server_read_indexes_failed",
                       "ReadIndex reads that got no read index (not leader, stopping).",
                       c["reads_failed"])
        yield _gauge("kvraft_server_read_indexes_pending", "ReadIndex reads waiting.",
                     c["reads_pending"])
        yield _histogram("kvraft_server_read_index_duration_seconds",
                         "ReadIndex wait (sampled: one read timed at a time).",
                         d.read_latency)

    def _disk(self) -> Iterator[Metric]:
        s, st = self.s, self.s.driver.stats
        t = s.disk
        yield _histogram("kvraft_disk_wal_fsync_duration_seconds",
                         "Durable log write (LMDB commit with fsync) of one Ready.", t.log_save)
        yield _counter("kvraft_disk_wal_entries", "Log entries written durably.",
                       st.entries_saved)
        yield _histogram("kvraft_server_apply_duration_seconds",
                         "One state-machine transaction applying committed entries.", t.apply)
        yield _histogram("kvraft_snapshot_save_duration_seconds",
                         "Writing a local snapshot file (count: snapshots taken).",
                         t.snapshot_save)
        yield _histogram("kvraft_snapshot_restore_duration_seconds",
                         "Restoring a snapshot received from the leader (count: installs).",
                         t.snapshot_restore)
        try:
            size = s.db_size()
        except Exception:  # noqa: BLE001 - the store is closing: leave the metric out
            return
        yield _gauge("kvraft_db_total_size_in_bytes", "Size of the LMDB data file.", size)

    def _network(self) -> Iterator[Metric]:
        s = self.s
        peers: dict[int, PeerStats] = _copy(s.transport.stats)
        fams = {
            "sent": CounterMetricFamily("kvraft_network_peer_sent_messages",
                                        "Raft messages written to a peer's stream.",
                                        labels=["peer"]),
            "bytes": CounterMetricFamily("kvraft_network_peer_sent_bytes",
                                         "Approximate bytes of those messages.",
                                         labels=["peer"]),
            "dropped": CounterMetricFamily(
                "kvraft_network_peer_dropped_messages",
                "Messages for a peer lost to a full queue or a broken stream "
                "(peer=\"unknown\": no such peer).", labels=["peer"]),
            "failures": CounterMetricFamily("kvraft_network_peer_sent_failures",
                                            "Peer streams that broke or could not open.",
                                            labels=["peer"]),
        }
        for pid, ps in sorted(peers.items()):
            label = [str(pid)]
            fams["sent"].add_metric(label, ps.sent)
            fams["bytes"].add_metric(label, ps.bytes_sent)
            fams["dropped"].add_metric(label, ps.dropped)
            fams["failures"].add_metric(label, ps.failures)
        fams["dropped"].add_metric(["unknown"], s.transport.unknown_dropped)
        yield from fams.values()
        rs = s.raft_service
        received = CounterMetricFamily("kvraft_network_peer_received_messages",
                                       "Raft messages received from a peer.", labels=["peer"])
        for pid, n in sorted(_copy(lambda: rs.received_from).items()):
            received.add_metric([str(pid)], n)
        yield received
        yield _counter("kvraft_network_peer_received_bytes",
                       "Bytes of Raft messages and snapshot chunks received from peers.",
                       s.grpc.raft_bytes_received)
        yield _counter("kvraft_network_peer_received_dropped",
                       "Received peer messages dropped (undecodable or misaddressed).",
                       rs.dropped)
        yield _counter("kvraft_network_snapshots_received", "Snapshots received and verified.",
                       rs.snapshots)
        yield _counter("kvraft_network_appends_held",
                       "AppendEntries a leader held back for a follower outside its fast "
                       "quorum and sent in a batch later (raft.quorum_first_ms).",
                       s.driver.stats.appends_held)
        yield _counter("kvraft_network_fast_quorum_misses",
                       "Times a leader's fast quorum left entries uncommitted for half of "
                       "raft.quorum_first_ms, so the next entries went to every follower.",
                       s.driver.stats.fast_set_misses)
        yield _counter("kvraft_network_snapshots_received_failures",
                       "Snapshot transfers rejected or broken.", rs.snapshot_failures)

    def _grpc(self) -> Iterator[Metric]:
        g = self.s.grpc
        started = CounterMetricFamily(
            "grpc_server_started", "gRPC calls started on the server.",
            labels=["grpc_type", "grpc_service", "grpc_method"])
        for (path, kind), n in sorted(_copy(lambda: g.started).items()):
            started.add_metric([kind, *_split(path)], n)
        yield started
        handled = CounterMetricFamily(
            "grpc_server_handled", "gRPC calls completed on the server, by status code.",
            labels=["grpc_type", "grpc_service", "grpc_method", "grpc_code"])
        for (path, kind, code), n in sorted(_copy(lambda: g.handled).items()):
            handled.add_metric([kind, *_split(path), code], n)
        yield handled


def _split(path: str) -> tuple[str, str]:
    """``/kvraft.v1.KV/Put`` -> (``kvraft.v1.KV``, ``Put``)."""
    service, _, method = path.lstrip("/").rpartition("/")
    return service, method


def build_registry(sources: MetricSources) -> CollectorRegistry:
    """A registry of its own per node (tests run several nodes in one process)."""
    registry = CollectorRegistry()
    registry.register(NodeCollector(sources))
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class MetricsServer:
    """The /metrics HTTP listener (prometheus_client's threaded WSGI server)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._server: Any = None  # the WSGI server once started
        self._thread: Any = None  # its serving thread

    def start(self, address: str) -> int:
        """Listen on ``host:port``; returns the bound port. Raises OSError (port in use)."""
        host, _, port = address.rpartition(":")
        self._server, self._thread = start_http_server(
            int(port), host.strip("[]"), registry=self.registry
        )
        return int(self._server.server_port)

    async def stop(self) -> None:
        """Stop listening and wait for the serving thread (off the event loop)."""
        server, self._server = self._server, None
        if server is None:
            return
        await asyncio.get_running_loop().run_in_executor(None, server.shutdown)
        server.server_close()
        self._thread.join(timeout=5)
