"""The runtime driver: one asyncio task that owns a Raft core and runs it for real.

Theory of operation
-------------------
The core (kvraft/core) is a pure state machine; this module gives it time, a disk and a
network, exactly as the deterministic simulator does in tests:

- **Input.** Every input -- peer messages from the transport, proposals and reads from the
  servicers, transport reports, ticks from a timer every ``tick_ms`` -- is queued in an
  inbox and handed to the core only by the driver task (``_drain``). Nobody else touches
  the core.
- **One Ready at a time, handled by one function** (``_handle_ready``), in this order:
  1. send ``messages`` (they never depend on this Ready's persistence);
  2. persist ``snapshot`` (restore the state machine from the received file first),
     ``entries`` and ``hard_state`` in one durable write (one fsync: group commit);
  3. send ``persisted_messages`` (vote requests and grants, append acks: they depend on step 2);
  4. apply ``committed_entries`` through the state machine in one transaction (for
     CONF_CHANGE entries the core's ``apply_conf_change`` is called, conf_changes.py, and
     the resulting membership saved with the applied index); resolve the proposals and
     reads they satisfy;
  5. ``advance(ready)``.
- **One transaction per Ready** (``JointStateMachine``). A leader's Ready without a
  snapshot that has both something to persist and committed entries does steps 2 and 4
  as ONE durable transaction; why that is sound, and why followers and Readys with a
  snapshot keep two writes, is in persist.py (``ReadyWriter``: what each write holds).
- **Off-loop I/O.** Steps 2 and 4 run on ONE dedicated I/O thread (a single-worker
  executor), so writes are never reordered. While the thread works the driver task keeps
  draining the inbox into the core: everything that arrives meanwhile (proposals, acks)
  lands in the NEXT Ready -- one fsync and one AppendEntries batch per follower for many
  requests. A write of a few entries runs on the loop itself when the thread is idle
  (``inline_write_entries``, io_thread.py): at low load the hand-offs cost more than
  the write.
- **Proposals** resolve when the entry at their index is applied: same term -> the apply
  result; another term -> OutcomeUnknown. A leader answers a lone proposal earlier, when
  its entry commits, from the result a dry run predicted after the entry's write, and
  holds that entry's apply for its next write (predictions.py, held_applies.py). Losing
  leadership fails pending proposals with OutcomeUnknown and unanswered reads with
  NotLeader (leadership.py).
- **Reads** (ReadIndex) resolve with their read index once applied >= it.
- **Backpressure.** At most ``max_inflight_proposals`` proposals and
  ``max_inflight_bytes`` bytes in flight; beyond that ``propose`` raises Overloaded.
  Likewise at most ``max_pending_reads`` reads wait for their read index (a leader
  without a quorum holds them until it steps down); beyond that ``read_index`` raises
  Overloaded.
- **Snapshots.** After ``snapshot_entries`` applied entries the state machine writes a
  snapshot on a separate thread (a consistent read view; writes go on), then the log is
  compacted behind it on the I/O thread (snapshot_scheduler.py). InstallSnapshot
  messages are streamed by the transport from the latest local snapshot file; a received
  snapshot is restored before ``LogStore.save(snapshot=...)`` (persist.py).
- **Failure.** Any storage error or broken invariant is fatal: the driver fails every
  waiter with DriverStopped, stops, and ``done`` carries the error (the server exits).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import structlog

from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfState,
    Entry,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Ready,
    Role,
)
from kvraft.errors import KvRaftError, NotLeader
from kvraft.runtime.base import (
    DriverConfig,
    DriverStats,
    DurableLog,
    JointApplyFn,
    JointStateMachine,
    LocalSnapshot,
    PredictingStateMachine,
    RaftNode,
    StateMachine,
    Transport,
)
from kvraft.runtime.callers import CallerFutures, chain, settle
from kvraft.runtime.commit_flush import CommitFlush
from kvraft.runtime.conf_changes import apply_conf_changes
from kvraft.runtime.errors import DriverStopped, OutcomeUnknown
from kvraft.runtime.freshness import Freshness
from kvraft.runtime.held_applies import HeldApplies
from kvraft.runtime.histogram import Histogram, SampledTimer
from kvraft.runtime.inbox import Inbox
from kvraft.runtime.io_thread import IoThread
from kvraft.runtime.leadership import Leadership, not_leader_msg
from kvraft.runtime.persist import ReadyWriter
from kvraft.runtime.predictions import Predictions
from kvraft.runtime.quorum_first import QuorumFirst
from kvraft.runtime.snapshot_scheduler import SnapshotScheduler
from kvraft.runtime.snapshots import SnapshotFiles
from kvraft.runtime.waiters import ProposalTracker, ReadWaiters, counters

T = TypeVar("T")

MembershipListener = Callable[[ConfChange, ConfState], None]


class Driver:
    """Runs one RawNode. Create it, ``start()`` it on a running loop, ``stop()`` it.

    Public coroutines (``propose``, ``read_index``, ...) may be called from any task on
    the same event loop; they queue work for the driver task and wait for the outcome.
    Read-only properties reflect the driver's latest view and may lag the core by one
    Ready.
    """

    def __init__(
        self,
        node: RaftNode,
        log: DurableLog,
        state: StateMachine,
        transport: Transport,
        config: DriverConfig,
        *,
        latest_snapshot: LocalSnapshot | None = None,
        on_membership: MembershipListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node = node  # owned: touched only by the driver task (and __init__)
        self._log = log  # written only on the I/O thread
        self._sm = state  # applied only on the I/O thread; snapshots on the snapshot thread
        # apply written into the log save's transaction (None: separate transactions)
        self._joint: JointApplyFn | None = (
            state.joint_apply(log) if isinstance(state, JointStateMachine) else None
        )
        self._transport = transport  # called on the loop only
        self.config = config
        self._on_membership = on_membership  # told of every applied conf change
        self._clock = clock
        self._log_ = structlog.get_logger("kvraft.runtime").bind(node_id=node.id)

        self._io = IoThread(f"kvraft-io-{node.id}", config.inline_write_entries)
        self._inbox = Inbox(config.tick_ms)  # work for the driver task, and ticks
        self._task: asyncio.Task[None] | None = None  # the driver task, once started
        self._stopping = False  # no new work accepted once True
        self.done: asyncio.Future[None] | None = None  # result: None (stopped) or the fatal error

        applied_index, applied_term = state.applied()
        self.applied = applied_index  # last index applied to the state machine
        self.applied_term = applied_term  # term of that entry
        self.leader = node.leader  # leader as of the latest Ready (0 = unknown)
        self.term = node.term  # term as of the latest Ready
        self.role = node.role  # role as of the latest Ready
        self.conf_state = node.conf_state  # membership applied (in force) on this node
        self._files = SnapshotFiles(latest_snapshot)  # local and received snapshot files
        self._proposals = ProposalTracker(config.max_inflight_proposals, config.max_inflight_bytes)
        self._reads = ReadWaiters(config.max_pending_reads)
        self._freshness = Freshness()  # evidence for bounded-staleness reads
        self._freshness.applied(applied_index)
        self._changed: asyncio.Condition | None = None  # notified after every Ready
        self.stats = DriverStats()  # counters; read by metrics and benchmarks
        self.read_latency = Histogram()  # ReadIndex wait, sampled: one timed read at a time
        self._read_timer = SampledTimer(self.read_latency, clock)
        self._callers = CallerFutures()  # caller futures not yet resolved
        self._leadership = Leadership(  # acks, term commit, failing waiters on loss
            node, self._proposals, self._reads, self._freshness, self.stats, clock
        )
        self._writer = ReadyWriter(log, state)  # what each Ready's durable write holds
        self._snapshots = SnapshotScheduler(  # local snapshots and log compaction
            node_id=node.id, every=config.snapshot_entries, files=self._files,
            since=applied_index - log.snapshot_meta().index, log=log, state=state,
            stats=self.stats, applied=lambda: self.applied, submit=self._submit,
            in_io=self._in_io, fatal_later=self._fatal_later,
        )
        self._commit_flush = CommitFlush(node, config.commit_flush_ms, self._submit)  # leader
        self._held = HeldApplies(  # follower, low load
            config.follower_apply_ms / 1000, 64, lambda: self._submit(_nothing))
        self._predicted = Predictions(  # leader, low load: answers at commit
            state if isinstance(state, PredictingStateMachine) else None)
        self._quorum_first = QuorumFirst(  # leader: new entries to a quorum first
            node.id, config.quorum_first_ms, self._send_now, self._submit,
            lambda: self._node.commit, self.stats)
        self._quorum_first.configure(self.role == Role.LEADER, self.conf_state)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the driver task and the tick timer on the running loop."""
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Condition()
        self.done = loop.create_future()
        self._inbox.start()
        self._task = loop.create_task(self._run(), name=f"kvraft-driver-{self._node.id}")

    async def stop(self) -> None:
        """Stop after the Ready in progress (if any) is fully handled; fail every waiter
        with DriverStopped; wait for the I/O and snapshot threads. Idempotent."""
        self._stopping = True
        self._inbox.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)
        await self._shutdown_threads()

    async def _shutdown_threads(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._io.shutdown)
        await loop.run_in_executor(None, self._snapshots.shutdown)

    # ------------------------------------------------------------------ transport -> driver
    def deliver(self, messages: Sequence[Message]) -> None:
        """Messages received from peers (called by the transport on the loop)."""
        if messages and not self._stopping:
            self._submit(lambda: self._step_all(messages))

    def deliver_snapshot(self, message: InstallSnapshot, path: str) -> None:
        """A snapshot file for ``message.meta`` is complete and durable at ``path``."""
        def work() -> None:
            self._files.received(message.meta, path)
            self._step_all((message,))

        if not self._stopping:
            self._submit(work)

    def report_unreachable(self, node_id: int) -> None:
        if not self._stopping:
            self._submit(lambda: self._node.report_unreachable(node_id))

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        if not self._stopping:
            self._submit(lambda: self._node.report_snapshot(node_id, ok))

    # ------------------------------------------------------------------ callers -> driver
    async def propose(self, data: bytes) -> object | None:
        """Replicate ``data`` as a NORMAL entry and return its apply result.

        Raises NotLeader (with the known leader), TransferInProgress, ProposalDropped,
        Overloaded (inflight budget exhausted), OutcomeUnknown (leadership lost before the
        entry applied) or DriverStopped."""
        return await self.propose_nowait(data)

    def propose_nowait(self, data: bytes) -> asyncio.Future[object | None]:
        """As ``propose`` but returns the future at once (for callers that multiplex many
        requests without a task each). Overloaded/DriverStopped are raised right away."""
        return self._propose(lambda: self._node.propose(data), len(data))

    async def propose_conf_change(self, cc: ConfChange) -> ConfState:
        """Propose a membership change; returns the membership once it is applied here.
        Raises NotLeader, ConfChangeInProgress, InvalidConfChange, OutcomeUnknown."""
        result = await self._propose(lambda: self._node.propose_conf_change(cc), 0)
        assert isinstance(result, ConfState)
        return result

    def _propose(self, append: Callable[[], int], size: int) -> asyncio.Future[object | None]:
        """Admit a proposal of ``size`` bytes, then (on the driver task) ``append`` it to
        the core's log and track it until its index applies."""
        fut: asyncio.Future[object | None] = self._new_future()
        try:
            self._proposals.admit(size)
        except Exception:
            fut.cancel()
            raise

        def work() -> None:
            if fut.done():  # the caller gave up before the core saw it: never proposed
                self._proposals.release(size)
                return
            try:
                index = append()
            except KvRaftError as exc:
                self._proposals.release(size, refused=True)
                fut.set_exception(exc)
                return
            self._proposals.appended(index, self._node.term, size, fut)

        self._submit(work)
        return fut

    async def read_index(self, *, lease: bool = False) -> int:
        """Linearizable read barrier: returns a read index once applied >= it; the caller
        then reads its local state. Raises NotLeader, Overloaded (too many reads pending)
        or DriverStopped."""
        return await self.read_index_nowait(lease=lease)

    def read_index_nowait(self, *, lease: bool = False) -> asyncio.Future[int]:
        """As ``read_index`` but returns the future at once. Overloaded/DriverStopped are
        raised right away."""
        fut: asyncio.Future[int] = self._new_future()
        try:
            self._reads.admit()
        except Exception:
            fut.cancel()
            raise

        def work() -> None:
            rid = self._reads.new_request(fut)
            self._read_timer.maybe_time(fut)
            try:
                self._node.read_index(rid, lease=lease)
            except KvRaftError as exc:
                self._reads.drop(rid, exc)

        self._submit(work)
        return fut

    async def transfer_leadership(self, to: int) -> None:
        """Ask the core to hand leadership to ``to``; returns at once (see wait_for)."""
        await self._call(lambda: self._node.transfer_leadership(to))

    async def campaign(self) -> None:
        await self._call(self._node.campaign)

    async def status(self) -> dict[str, object]:
        """The core's status plus the driver's view (applied, snapshot)."""
        st = await self._call(self._node.status)
        st = dict(st)
        st["applied"] = self.applied
        st["snapshot_index"] = self._log.snapshot_meta().index
        st["log_first"] = self._log.first_index()
        st["log_last"] = self._log.last_index()
        return st

    async def take_snapshot(self) -> LocalSnapshot:
        """Snapshot the state now (or join the one in progress) and compact the log."""
        fut: asyncio.Future[LocalSnapshot] = self._new_future()

        def work() -> None:
            running = self._snapshots.start()
            running.add_done_callback(lambda f: chain(f, fut))

        self._submit(work)
        return await fut

    async def wait_for(self, predicate: Callable[[Driver], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked after every Ready) or ``timeout``
        seconds pass; returns whether it holds."""
        assert self._changed is not None, "driver not started"
        changed = self._changed
        async with changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait_for(lambda: predicate(self)), timeout)
        return predicate(self)

    def counters(self) -> dict[str, int]:
        """Proposal and read bookkeeping for metrics; safe to call from any thread."""
        return counters(self._proposals, self._reads)

    def staleness(self) -> float | None:
        """Seconds since this node's state was provably current (see freshness.py); 0.0
        for a leader confirmed by a quorum and fully applied; None if never."""
        t = self._freshness.current_as_of()
        return None if t is None else max(0.0, self._clock() - t)

    @property
    def node_id(self) -> int:
        return self._node.id

    @property
    def commit(self) -> int:
        return self._node.commit

    @property
    def latest_snapshot(self) -> LocalSnapshot | None:
        """The newest complete local snapshot file (taken here or installed)."""
        return self._snapshots.latest

    @property
    def fatal(self) -> BaseException | None:
        """The error that stopped the driver, if any."""
        if self.done is None or not self.done.done() or self.done.cancelled():
            return None
        return self.done.exception()

    # ------------------------------------------------------------------ the driver task
    async def _run(self) -> None:
        assert self.done is not None
        error: BaseException | None = None
        try:
            while not self._stopping:
                self._inbox.drain(self._tick)  # ticks first, then queued work in order
                if self._node.has_ready():
                    await self._handle_ready(self._node.ready())
                elif self._held.due:
                    await self._apply_held()
                else:
                    await self._inbox.wait()
        except BaseException as exc:  # noqa: BLE001 - any failure here is fatal
            error = exc
            self._log_.error("driver stopped by a fatal error", error=repr(exc))
        finally:
            self._stopping = True
            self._inbox.close()
            self._commit_flush.cancel()
            self._held.cancel()
            self._quorum_first.cancel()
            self._fail_everything(error)
            if not self.done.done():
                if error is None or isinstance(error, asyncio.CancelledError):
                    self.done.set_result(None)
                else:
                    self.done.set_exception(error)

    async def _handle_ready(self, rd: Ready) -> None:
        """THE Ready handler: send -> persist -> send persisted -> apply -> advance."""
        self._observe_soft_state(rd)
        self._send(rd.messages)
        answered = self._predicted.answer(rd.committed_entries, self._proposals)
        self.stats.answered_predicted += answered
        if rd.messages and (rd.entries or rd.snapshot is not None):
            # let the peer writers hand this Ready's messages to gRPC before the I/O
            # thread starts the write and competes with them for the GIL
            await asyncio.sleep(0)
        committed: Sequence[Entry] = rd.committed_entries
        cc_results = apply_conf_changes(self._node, committed, self._membership_changed)
        if committed and self._held.may_hold(
            rd, self.role, cc_results, self._reads.pending(), answered == len(committed)
        ):
            self._held.hold(committed)
            committed = ()
        elif self._held.entries:
            held = self._held.take()
            if rd.snapshot is None:  # applied first, in order (a snapshot covers them all)
                committed = held + list(committed)
        stats = self.stats
        stats.readys += 1
        hard = self._writer.hard_state_to_save(rd)
        # proposers hear their results as soon as they are computed (the entries are
        # durable in the log); applied/reads move only once the state commit is done
        loop = asyncio.get_running_loop()

        def staged(results: Sequence[object | None]) -> None:  # where the write runs
            loop.call_soon_threadsafe(self._answer, committed, results, cc_results)

        joined: Sequence[object | None] | None = None  # results of an apply in the save
        if rd.snapshot is not None or rd.entries or hard is not None:
            t0 = self._clock()
            installed = None
            joinable = self.role == Role.LEADER and rd.snapshot is None
            if committed and joinable and self._joint is not None:
                joined = await self._pump_until(self._io.write_small(
                    len(rd.entries), self._writer.persist_joined, rd, hard, self._joint,
                    committed, self.conf_state, staged,
                ))
            else:
                received = self._files.take_received(rd.snapshot) if rd.snapshot else []
                saving = self._io.write_small(
                    0 if rd.snapshot else len(rd.entries), self._writer.persist, rd, hard, received)
                installed = await self._pump_until(saving)
            self._writer.saved(hard)
            stats.save_seconds += self._clock() - t0
            stats.saves += 1
            stats.entries_saved += len(rd.entries)
            if installed is not None:
                self._installed_snapshot(installed)
        self._send(rd.persisted_messages)
        if committed:
            if joined is not None:
                results = joined
                stats.applies_joined += 1
            else:
                # the membership in force after these entries is saved with the applied index
                t0 = self._clock()
                job = self._in_io(self._sm.apply, committed, self.conf_state, staged)
                results = await self._pump_until(job)
                stats.apply_seconds += self._clock() - t0
            stats.applies += 1
            stats.entries_applied += len(committed)
            self._applied(committed, results, cc_results)
        self._predicted.run(self._to_predict(rd))  # after the write and any apply
        for rs in rd.read_states:
            self._reads.answered(rs.request_id, rs.index, self.applied)
        for rid in rd.dropped_reads:
            self._reads.drop(rid, NotLeader(self._node.leader, not_leader_msg(self._node.leader)))
        self._node.advance(rd)
        self._leadership.check()
        self._snapshots.maybe_start()
        self._commit_flush.arm()
        await self._notify()

    def _to_predict(self, rd: Ready) -> Sequence[Entry]:
        """Leader: the entries of ``rd`` to run dry once written (predictions.py)."""
        if self.role != Role.LEADER or rd.snapshot is not None:
            return ()
        return self._predicted.wanted(rd.entries, self._proposals)

    def _membership_changed(self, index: int, cc: ConfChange, conf: ConfState) -> None:
        """The committed conf change at ``index`` is in force (``conf_state`` follows)."""
        self.conf_state = conf
        self._quorum_first.configure(self.role == Role.LEADER, conf)
        self._log_.info(
            "membership changed", index=index, change=cc.type.name, member=cc.node_id,
            voters=sorted(conf.voters), learners=sorted(conf.learners),
        )
        if self._on_membership is not None:
            self._on_membership(cc, conf)

    def _answer(
        self, committed: Sequence[Entry], results: Sequence[object | None],
        cc_results: Mapping[int, ConfState],
    ) -> None:
        """Resolve the proposals of ``committed`` (a second call is a no-op)."""
        assert len(results) == len(committed), "state machine returned the wrong result count"
        for e, r in zip(committed, results, strict=True):
            self._proposals.applied(e.index, e.term, cc_results.get(e.index, r))

    def _applied(
        self, committed: Sequence[Entry], results: Sequence[object | None],
        cc_results: Mapping[int, ConfState],
    ) -> None:
        self._predicted.check(committed, results)
        self._answer(committed, results, cc_results)
        last = committed[-1]
        self.applied, self.applied_term = last.index, last.term
        self._leadership.applied(last.term)
        self._snapshots.since += len(committed)
        self._freshness.applied(self.applied)
        self._reads.applied_to(self.applied)

    async def _apply_held(self) -> None:
        """Apply what a follower held back, in one write (driver task, between Readys)."""
        entries = self._held.take()
        results = await self._pump_until(self._in_io(self._sm.apply, entries, self.conf_state))
        self.stats.applies += 1
        self.stats.entries_applied += len(entries)
        self._applied(entries, results, {})
        await self._notify()

    def _installed_snapshot(self, snap: LocalSnapshot) -> None:
        meta = snap.meta
        self._predicted.clear()
        self._snapshots.installed(snap)
        self.applied, self.applied_term = meta.index, meta.term
        self.conf_state = meta.conf_state
        self._freshness.applied(self.applied)
        self._reads.applied_to(self.applied)
        self.stats.snapshots_installed += 1
        self._log_.info("installed snapshot from leader", index=meta.index, term=meta.term)

    # ------------------------------------------------------------------ leadership
    def _observe_soft_state(self, rd: Ready) -> None:
        ss = rd.soft_state
        if ss is None:
            return
        old_leader, old_role, old_term = self.leader, self.role, self.term
        self.leader, self.role, self.term = ss.leader, ss.role, ss.term
        self._leadership.observe(old_leader, old_role, old_term, ss)
        self._quorum_first.configure(ss.role == Role.LEADER, self.conf_state)

    # ------------------------------------------------------------------ plumbing
    def _send(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        plain: list[Message] = []
        # appends held for a follower go before any other message to it (quorum_first.py)
        for m in self._quorum_first.route(messages):
            if isinstance(m, InstallSnapshot):
                self._send_now(plain)
                plain = []
                self._snapshots.send(m, self._transport, self._node)
            else:
                plain.append(m)
        self._send_now(plain)

    def _send_now(self, messages: Sequence[Message]) -> None:
        if messages:
            self.stats.messages_sent += len(messages)
            self._transport.send(messages)

    def _step_all(self, messages: Sequence[Message]) -> None:
        now = self._clock()
        node = self._node
        for m in messages:
            node.step(m)
            match m:
                case AppendEntries() | Heartbeat() if m.term == node.term and m.src == node.leader:
                    self._freshness.heard(m.commit, now)
                case AppendResponse() if m.term == node.term:
                    self._leadership.acked(m, now)
                    self._quorum_first.acked(m)
                case AppendResponse() | HeartbeatResponse():
                    self._leadership.acked(m, now)
                case _:
                    pass

    def _tick(self) -> None:
        self._node.tick()
        self._leadership.ticked()

    def _submit(self, work: Callable[[], None]) -> None:
        self._inbox.put(work)

    async def _pump_until(self, fut: asyncio.Future[T]) -> T:
        """Keep feeding inputs to the core until ``fut`` (an I/O job) completes."""
        return await self._inbox.pump_until(fut, self._tick)

    def _in_io(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return self._io.run(fn, *args)

    async def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the driver task (it may touch the core) and return its result."""
        fut: asyncio.Future[T] = self._new_future()
        self._submit(lambda: settle(fut, fn))
        return await fut

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _fatal_later(self, exc: BaseException | None) -> None:
        def raise_it() -> None:
            raise exc or RuntimeError("fatal error")

        self._submit(raise_it)

    def _check_running(self) -> None:
        if self._stopping or self._task is None:
            raise DriverStopped("the node is shutting down")

    def _fail_everything(self, error: BaseException | None) -> None:
        stopped = "the node stopped" + (f" after a fatal error: {error!r}" if error else "")
        # appended entries may have reached followers and commit without us: in doubt
        self._proposals.fail_all(lambda: OutcomeUnknown(
            f"{stopped} before the write applied: the outcome is unknown; retry with the "
            "same session sequence number"
        ))
        self._reads.fail_all(lambda: DriverStopped(stopped))
        self._inbox.close()
        self._callers.fail_all(lambda: DriverStopped(stopped))

    def _new_future(self) -> asyncio.Future[Any]:
        """A future for a caller; failed with DriverStopped if the driver stops first."""
        self._check_running()
        return self._callers.new()


def _nothing() -> None:
    """Queued only to wake the driver task."""
