"""The composition root: config -> storage, state machine, core, transport, driver, gRPC.

Lifecycle (as uvicorn's server): ``startup()`` opens and reconciles storage, builds every
part and starts serving; ``main_loop()`` waits for a stop request or a fatal driver
error; ``shutdown()`` hands leadership over (if this node leads), stops the gRPC server,
the driver, the transport and closes storage. :func:`run` does all three on a uvloop
event loop (installed here, and only here, with a fallback to the default loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kvraft._pb.kvraft.v1 import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc, raft_pb2
from kvraft.core import Config, RawNode
from kvraft.core.types import ConfChange, ConfState, InstallSnapshot, Message, Role
from kvraft.kv.machine import KvStateMachine
from kvraft.kv.validate import Limits as KvLimits
from kvraft.runtime import Driver, DriverConfig
from kvraft.runtime.base import DurableLog, LocalSnapshot, StateMachine
from kvraft.server import grpc_engine, recovery
from kvraft.server.admin_service import AdminService
from kvraft.server.config import NodeConfig
from kvraft.server.frontend import KvFrontend
from kvraft.server.grpc_metrics import GrpcMetrics
from kvraft.server.kv_service import KvService
from kvraft.server.logs import announce_serving
from kvraft.server.machine import MachineAdapter, deliver_verified_snapshot, local_snapshot
from kvraft.server.members import LEGACY_CACHE, AddressBook, take_legacy_cache
from kvraft.server.metrics import MetricSources, MetricsServer, build_registry
from kvraft.server.timing import DiskTimings, TimedLog, TimedStateMachine
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore
from kvraft.transport import SERVER_OPTIONS, PeerTransport, RaftService
from kvraft.transport.wire import MAX_MESSAGE_BYTES

log = structlog.get_logger("kvraft.server")

GRPC_OVERHEAD = 64 << 10
"""Room above max_request_bytes for the gRPC receive limit (so our own size check, with
its INVALID_ARGUMENT message, fires before gRPC's RESOURCE_EXHAUSTED), and for a
proposal's envelope in the core's max_bytes_per_msg."""


class StartupError(Exception):
    """The node cannot start (port in use, bad data dir...); the message says why."""


class _TransportAdapter:
    """runtime.base.Transport over the gRPC PeerTransport."""

    def __init__(self, transport: PeerTransport) -> None:
        self.transport = transport

    def send(self, messages: Sequence[Message]) -> None:
        self.transport.send(messages)

    def send_snapshot(self, message: InstallSnapshot, snapshot: LocalSnapshot) -> None:
        self.transport.send_snapshot(message, Path(snapshot.path))

    def set_peers(self, peers: Mapping[int, str]) -> None:
        self.transport.update_peers(peers)


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.log_store: LmdbLogStore | None = None
        self.machine: KvStateMachine | None = None
        self.driver: Driver | None = None
        self.transport: PeerTransport | None = None
        self.server: Any = None  # grpc.aio.Server once started
        self.health: Any = None  # grpc_health aio HealthServicer
        self.book: AddressBook | None = None
        self.frontend: KvFrontend | None = None  # KV request logic, once built
        self.stop_requested = asyncio.Event()
        self._health_task: asyncio.Task[None] | None = None
        self._log = log.bind(node_id=config.node_id)
        # metrics only when a metrics address is configured (else no per-call cost at all)
        self.grpc_metrics = GrpcMetrics() if config.metrics else None  # gRPC call counters
        self.disk_timings = DiskTimings()  # log/apply/snapshot latency histograms
        self.raft_service: RaftService | None = None  # peer servicer (received counters)
        self.metrics_server: MetricsServer | None = None  # /metrics listener, if configured

    # ------------------------------------------------------------------ startup
    async def startup(self) -> None:
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.log_store = LmdbLogStore(cfg.lmdb_dir)
        snapshots = SnapshotDir(cfg.snapshot_dir, keep=cfg.raft.snapshots_kept)
        machine = self.machine = KvStateMachine(LmdbStateStore(store.env), snapshots)
        how = recovery.prepare(store, machine, snapshots, peers=cfg.peers, join=cfg.join)
        book = self.book = AddressBook(cfg.peers, self._load_members(machine))
        applied, _term = machine.applied()
        r = cfg.raft
        core = RawNode(
            Config(
                id=cfg.node_id,
                election_ticks=r.election_ticks,
                heartbeat_ticks=r.heartbeat_ticks,
                pre_vote=r.pre_vote,
                check_quorum=r.check_quorum,
                max_bytes_per_msg=max(1 << 20, cfg.limits.max_request_bytes + GRPC_OVERHEAD),
                applied=applied,
                lazy_commit=r.commit_flush_ms > 0,
            ),
            store,
            random.Random(),
        )
        latest = machine.latest_snapshot()
        transport = self.transport = PeerTransport(
            cfg.node_id,
            book.all(),
            cluster_id=cfg.cluster_id,
            on_unreachable=self._on_unreachable,
            on_snapshot_status=self._on_snapshot_status,
        )
        timed_log: DurableLog = store
        loop = asyncio.get_running_loop()
        timed_machine: StateMachine = MachineAdapter(
            machine, lambda: loop.call_soon_threadsafe(self._reload_members)
        )
        if cfg.metrics:
            timed_log = TimedLog(store, self.disk_timings)
            timed_machine = TimedStateMachine(timed_machine, self.disk_timings)
        driver = self.driver = Driver(
            core,
            timed_log,
            timed_machine,
            _TransportAdapter(transport),
            DriverConfig(
                tick_ms=r.tick_ms,
                snapshot_entries=r.snapshot_entries,
                max_inflight_proposals=cfg.limits.max_inflight_proposals,
                max_inflight_bytes=cfg.limits.max_inflight_bytes,
                max_pending_reads=cfg.limits.max_pending_reads,
                commit_flush_ms=r.commit_flush_ms,
                follower_apply_ms=r.follower_apply_ms,
                quorum_first_ms=r.quorum_first_ms,
                inline_write_entries=4,
            ),
            latest_snapshot=local_snapshot(latest) if latest is not None else None,
            on_membership=self._on_membership,
        )
        self.server = self._build_server(driver, machine, book)
        self._bind()
        self._start_metrics(driver, store, transport)
        await self.server.start()
        driver.start()
        self._health_task = asyncio.create_task(self._keep_health())
        hard, conf = store.initial_state()
        self._log.info(
            "node started", how=how, address=cfg.address, term=hard.term, applied=applied,
            voters=sorted(conf.voters), learners=sorted(conf.learners),
            data_dir=str(cfg.data_dir), grpc_io=grpc_engine.describe(),
        )
        announce_serving(cfg.node_id, cfg.address)

    def _build_server(self, driver: Driver, machine: KvStateMachine, book: AddressBook) -> Any:
        cfg = self.config
        limits = cfg.limits
        max_msg = max(limits.max_request_bytes + GRPC_OVERHEAD, MAX_MESSAGE_BYTES)
        server = grpc.aio.server(
            interceptors=[self.grpc_metrics] if self.grpc_metrics is not None else None,
            options=[
                *SERVER_OPTIONS,  # keepalive settings the peer streams need
                ("grpc.max_receive_message_length", max_msg),
                ("grpc.max_send_message_length", max_msg),
                ("grpc.so_reuseport", 0),  # a second node on the same port must fail
            ]
        )
        frontend = self.frontend = KvFrontend(
            driver,
            machine,
            KvLimits(
                max_key_bytes=limits.max_key_bytes,
                max_value_bytes=limits.max_value_bytes,
                max_txn_ops=limits.max_txn_ops,
                max_request_bytes=limits.max_request_bytes,
            ),
            book.get,
            lease_reads=cfg.raft.lease_reads,
        )
        kv_pb2_grpc.add_KVServicer_to_server(KvService(frontend, book.get), server)
        assert self.log_store is not None
        store = self.log_store
        admin = AdminService(
            driver,
            frontend,
            address=cfg.address,
            cluster_id=cfg.cluster_id,
            address_of=book.get,
            health=self.health_state,
            db_size=store.disk_size,
            revision=lambda: machine.position().revision,
            election_timeout_s=cfg.raft.election_ticks * cfg.raft.tick_ms / 1000,
        )
        admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
        self.raft_service = RaftService(
            node_id=cfg.node_id,
            cluster_id=cfg.cluster_id,
            on_messages=driver.deliver,
            on_snapshot=functools.partial(deliver_verified_snapshot, driver.deliver_snapshot),
            snapshot_dir=cfg.snapshot_dir,
        )
        self.raft_service.add_to_server(server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = (
            kv_pb2.DESCRIPTOR.services_by_name["KV"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
            raft_pb2.DESCRIPTOR.services_by_name["Raft"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        return server

    def _bind(self) -> None:
        address = self.config.address
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on {address}: {exc} (is the port in use?)") from exc
        if port == 0:
            raise StartupError(f"cannot listen on {address}: the port is in use or invalid")

    def _start_metrics(self, driver: Driver, store: LmdbLogStore, transport: PeerTransport) -> None:
        cfg = self.config
        if cfg.metrics is None or self.grpc_metrics is None or self.raft_service is None:
            return
        registry = build_registry(MetricSources(
            node_id=cfg.node_id, cluster_id=cfg.cluster_id, driver=driver, transport=transport,
            raft_service=self.raft_service, grpc=self.grpc_metrics, disk=self.disk_timings,
            db_size=store.disk_size,
        ))
        self.metrics_server = MetricsServer(registry)
        try:
            port = self.metrics_server.start(cfg.metrics)
        except (OSError, ValueError) as exc:
            self.metrics_server = None
            raise StartupError(
                f"cannot serve metrics on {cfg.metrics}: {exc} (is the port in use?)"
            ) from exc
        self._log.info("metrics endpoint", url=f"http://{cfg.metrics.rpartition(':')[0]}:{port}"
                       "/metrics")

    # ------------------------------------------------------------------ callbacks
    def _on_unreachable(self, peer: int) -> None:
        if self.driver is not None:
            self.driver.report_unreachable(peer)

    def _on_snapshot_status(self, peer: int, ok: bool) -> None:
        if self.driver is not None:
            self.driver.report_snapshot(peer, ok)

    def _on_membership(self, cc: ConfChange, cs: ConfState) -> None:
        assert self.book is not None and self.transport is not None
        if self.book.apply(cc, cs):
            self.transport.update_peers(self.book.all())

    def _load_members(self, machine: KvStateMachine) -> dict[int, str]:
        """The replicated address record; a data dir of an older build seeds it (once)
        from that build's address cache file, which is then deleted."""
        legacy = take_legacy_cache(self.config.data_dir)
        if legacy is not None:
            if machine.seed_members(legacy):
                self._log.info("address cache moved into the state store", members=legacy)
            (self.config.data_dir / LEGACY_CACHE).unlink(missing_ok=True)
        return machine.members() or {}

    def _reload_members(self) -> None:
        """Event loop, after a snapshot install (queued by the I/O thread before the
        driver hears of the install, so before any later conf change reaches the book):
        the book follows the installed record; the transport learns every address."""
        assert self.book is not None and self.transport is not None
        assert self.machine is not None
        members = self.machine.members()
        if members is not None and self.book.reload(members):
            self._log.info("addresses from the installed snapshot", members=members)
            self.transport.update_peers(self.book.all())

    # ------------------------------------------------------------------ health
    def health_state(self) -> tuple[bool, str]:
        """(healthy, why not): a known leader, a running driver, sound storage."""
        d = self.driver
        if d is None:
            return False, "starting"
        if d.fatal is not None:
            return False, f"stopped by a fatal error: {d.fatal}"
        if not d.leader:
            return False, "no leader known"
        return True, ""

    async def _keep_health(self) -> None:
        assert self.driver is not None
        status = health_pb2.HealthCheckResponse
        serving: bool | None = None
        while True:
            ok, _why = self.health_state()
            if ok != serving:
                serving = ok
                value = status.SERVING if ok else status.NOT_SERVING
                await self.health.set("", value)
                await self.health.set("kvraft.v1.KV", value)
            await self.driver.wait_for(functools.partial(self._health_changed, ok), timeout=5.0)

    def _health_changed(self, was: bool, _driver: Driver) -> bool:
        return self.health_state()[0] != was

    # ------------------------------------------------------------------ main loop / shutdown
    async def main_loop(self) -> int:
        """Wait for a stop request (signal) or a fatal driver error; returns the exit code."""
        assert self.driver is not None and self.driver.done is not None
        stop = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait((stop, self.driver.done), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        fatal = self.driver.fatal
        if fatal is not None:
            self._log.error("stopping: fatal error", error=str(fatal))
            return 1
        return 0

    async def shutdown(self) -> None:
        d = self.driver
        if d is not None and d.fatal is None and d.role == Role.LEADER:
            await self._hand_over(d)
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        if self._health_task is not None:
            self._health_task.cancel()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        if self.server is not None:
            await self.server.stop(grace=1.0)
        if self.frontend is not None:
            await self.frontend.close()
        if d is not None:
            await d.stop()
        if self.transport is not None:
            await self.transport.close()
        if self.log_store is not None:
            self.log_store.close()
        if d is not None and d.done is not None:  # it ran; a failed startup says why elsewhere
            self._log.info("node stopped", **dataclasses.asdict(d.stats))

    async def _hand_over(self, d: Driver) -> None:
        """Transfer leadership to the most up-to-date other voter, waiting at most an
        election timeout for another leader to appear."""
        others = d.conf_state.voters - {d.node_id}
        if not others:
            return
        progress: Any = (await d.status()).get("progress") or {}
        target = max(sorted(others), key=lambda n: int(progress.get(n, {}).get("match", 0)))
        timeout = self.config.raft.election_ticks * self.config.raft.tick_ms / 1000 * 2
        self._log.info("shutting down: transferring leadership", to=target)
        try:
            await d.transfer_leadership(target)
        except Exception as exc:  # noqa: BLE001 - best effort; we stop anyway
            self._log.warning("leadership transfer refused", error=str(exc))
            return
        moved = await d.wait_for(lambda drv: drv.leader not in (0, drv.node_id), timeout)
        self._log.info("leadership transferred" if moved else "leadership transfer timed out",
                       leader=d.leader)


async def serve(config: NodeConfig) -> int:
    """Run a node until SIGTERM/SIGINT or a fatal error; returns the exit code."""
    node = Node(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop_requested.set)
    try:
        await node.startup()
        code = await node.main_loop()
    finally:
        await node.shutdown()
    return code


def run(config: NodeConfig) -> int:
    """The one place uvloop is installed (falls back to the default asyncio loop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(config))
