"""What the runtime driver needs from its neighbours: a state machine and a transport.

These are small ``typing.Protocol``s; the server (the composition root) adapts the real
KV state machine and the gRPC peer transport to them, and the driver's unit tests use
in-memory fakes.

Threads: the driver runs on one asyncio event loop. Every :class:`StateMachine` method
except ``write_snapshot`` runs on the driver's single I/O thread, one call at a time and
in Ready order; ``write_snapshot`` runs on a separate snapshot thread and may overlap
``apply`` (it must read one consistent view and never block writers). Every
:class:`Transport` method is called on the event loop and must not block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kvraft.core.types import (
    ConfChange,
    ConfState,
    Entry,
    HardState,
    InstallSnapshot,
    Message,
    Ready,
    Role,
    SnapshotMeta,
)


@dataclass(slots=True)
class DriverStats:
    """Counters for metrics and benchmarks (monotonic, since start)."""

    readys: int = 0  # Readys handled
    saves: int = 0  # durable log writes (one per Ready that had something to persist)
    entries_saved: int = 0  # log entries persisted
    applies: int = 0  # state machine applies (own transaction or joined with a log save)
    applies_joined: int = 0  # of those, written in the same transaction as a log save
    entries_applied: int = 0  # entries applied
    answered_predicted: int = 0  # proposals answered from a prediction at commit (predictions.py)
    appends_held: int = 0  # AppendEntries a leader held for a follower outside its fast set
    fast_set_misses: int = 0  # times that fast set did not commit in time (quorum_first.py)
    save_seconds: float = 0.0  # wall time spent waiting for log writes
    apply_seconds: float = 0.0  # wall time spent waiting for state machine transactions
    messages_sent: int = 0  # messages handed to the transport
    snapshots: int = 0  # snapshots taken locally
    snapshots_installed: int = 0  # snapshots received and installed
    leader_changes: int = 0  # times this node saw a new leader (not counting 'no leader')


@dataclass(frozen=True, slots=True)
class DriverConfig:
    tick_ms: int = 50  # wall-clock length of one core tick
    snapshot_entries: int = 10_000  # applied entries between automatic snapshots (0 = never)
    max_inflight_proposals: int = 4096  # proposals admitted and not yet applied
    max_inflight_bytes: int = 64 << 20  # their total size in bytes
    max_pending_reads: int = 16384  # ReadIndex/lease reads admitted and not yet answered
    # a leader whose core holds commit indexes back (Config.lazy_commit) tells followers
    # that lack one within this many ms (0: never by timer; heartbeats still carry it)
    commit_flush_ms: int = 0
    # a follower holds small batches of committed entries up to this many ms and applies
    # them in one write (0: every Ready's entries at once); see held_applies.py
    follower_apply_ms: int = 0
    # a leader sends AppendEntries at once to the followers that complete a quorum
    # fastest, to the others in batches after this many ms (0: to all at once); see
    # quorum_first.py
    quorum_first_ms: int = 0
    # a write of at most this many entries runs on the event loop when the I/O thread is
    # idle, without the two thread hand-offs (0: always on the I/O thread); io_thread.py
    inline_write_entries: int = 0


@dataclass(frozen=True, slots=True)
class LocalSnapshot:
    """A snapshot file on this node's disk and what it stands for."""

    path: str  # absolute path of a complete, fsynced snapshot file
    meta: SnapshotMeta  # index/term/membership of the state the file holds
    size: int  # file size in bytes


class StateMachine(Protocol):
    """The replicated state machine, as the driver drives it."""

    def applied(self) -> tuple[int, int]:
        """(index, term) of the last applied entry; (0, 0) on a fresh store."""
        ...

    def apply(
        self, entries: Sequence[Entry], conf_state: ConfState | None,
        staged: Callable[[Sequence[object | None]], None] | None = None,
    ) -> Sequence[object | None]:
        """Apply committed ``entries`` (contiguous, starting at applied()+1) in ONE durable
        transaction, together with the new applied position and the membership in force
        after the last entry (``conf_state``; the driver always passes it). NORMAL
        entries with data are commands; empty NORMAL entries (leader no-ops) and
        CONF_CHANGE entries only advance the applied position. Returns one result per
        entry (None where there is nothing to report); results go to the proposer of
        that entry, if it is waiting on this node. ``staged``, if given, is called (on
        the I/O thread) with the same results once they are computed and before the
        transaction commits: committed entries are durable in the Raft log, so their
        proposers may be answered while the state's own fsync runs.
        Deterministic; raises only for storage failures (the node must stop)."""
        ...

    def write_snapshot(self) -> LocalSnapshot:
        """Write a snapshot of one consistent view of the state (taken at the moment of
        the call or later) to a new file in the node's snapshot directory and return it.
        Runs on the snapshot thread."""
        ...

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        """Replace the whole state by the snapshot file ``path`` (received from the
        leader, standing for ``meta``) atomically, keep the file as this node's latest
        snapshot and return it. Raises SnapshotError if the file is damaged."""
        ...


JointApplyFn = Callable[
    [Any, Sequence[Entry], ConfState | None, Callable[[Sequence[object | None]], None] | None],
    Sequence[object | None],
]
"""(txn, entries, conf_state, staged) -> results: ``StateMachine.apply`` written into an
open write transaction of the log store instead of one of its own (the caller commits)."""


@runtime_checkable
class JointStateMachine(Protocol):
    """Optional capability of a StateMachine whose state shares the log store's
    transactions: the driver then writes a Ready's log save and the apply of its committed
    entries (durable in the log since an earlier Ready) as ONE durable transaction."""

    def joint_apply(self, log: object) -> JointApplyFn | None:
        """The merged apply if ``log`` is a store whose ``save(..., extra=fn)`` calls
        ``fn(txn)`` inside its write transaction and the state lives in it; else None."""
        ...


@runtime_checkable
class PredictingStateMachine(Protocol):
    """Optional capability of a StateMachine that can tell results before applying: the
    leader then answers a proposer the moment its entry commits (predictions.py)."""

    def predict(self, entries: Sequence[Entry]) -> Sequence[object | None]:
        """Results ``apply`` will return for a prefix of ``entries`` (maybe empty), without
        writing anything; empty unless the state stands right before ``entries[0]``.
        Read-only; the driver calls it on the event loop once the entries are written."""
        ...

    def result_key(self, result: object | None) -> bytes:
        """Equal for equal results: a predicted result is checked against the apply's."""
        ...


class Transport(Protocol):
    """Carries core messages to peers; best effort (messages may be lost)."""

    def send(self, messages: Sequence[Message]) -> None:
        """Queue messages for their ``dst`` peers, in order; never blocks. Messages for an
        unknown or unreachable peer are dropped (the transport then tells the driver via
        ``report_unreachable``)."""
        ...

    def send_snapshot(self, message: InstallSnapshot, snapshot: LocalSnapshot) -> None:
        """Stream the snapshot file to ``message.dst`` in the background; the receiver
        steps ``message`` once the file is durable on its side. The transport reports the
        outcome with the driver's ``report_snapshot(dst, ok)``."""
        ...

    def set_peers(self, peers: Mapping[int, str]) -> None:
        """The peers' addresses (node id -> host:port), excluding or including this node
        (the transport ignores its own id). Called on start and after membership changes."""
        ...


class DurableLog(Protocol):
    """The part of the LogStore (kvraft/storage/base.py) the driver uses. Writes run on the
    I/O thread; reads (``term``/``snapshot_meta``/...) may run on the event loop."""

    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
    ) -> None: ...

    def compact(self, meta: SnapshotMeta) -> None: ...

    def save_conf_state(self, cs: ConfState) -> None: ...

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def term(self, index: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot_meta(self) -> SnapshotMeta: ...


class JointLog(DurableLog, Protocol):
    """A DurableLog whose ``save`` runs ``extra(txn)`` inside its one durable write
    transaction, after the snapshot metadata, entries and hard state (LmdbLogStore)."""

    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
        extra: Callable[[Any], None] | None = None,
    ) -> None: ...


class RaftNode(Protocol):
    """The RawNode API (kvraft/core/raw_node.py) as the driver uses it. Every call happens
    on the driver's event-loop task."""

    @property
    def id(self) -> int: ...

    @property
    def term(self) -> int: ...

    @property
    def leader(self) -> int: ...

    @property
    def role(self) -> Role: ...

    @property
    def commit(self) -> int: ...

    @property
    def conf_state(self) -> ConfState: ...

    def tick(self) -> None: ...

    def step(self, msg: Message) -> None: ...

    def campaign(self) -> None: ...

    def propose(self, data: bytes) -> int: ...

    def propose_conf_change(self, cc: ConfChange) -> int: ...

    def apply_conf_change(self, cc: ConfChange) -> ConfState: ...

    def read_index(self, request_id: int, *, lease: bool = False) -> None: ...

    def transfer_leadership(self, to: int) -> None: ...

    def report_unreachable(self, node_id: int) -> None: ...

    def report_snapshot(self, node_id: int, ok: bool) -> None: ...

    def flush_commit(self) -> None: ...

    def commit_unsent(self, upto: int | None = None) -> bool: ...

    def has_ready(self) -> bool: ...

    def ready(self) -> Ready: ...

    def advance(self, ready: Ready) -> None: ...

    def status(self) -> dict[str, object]: ...
