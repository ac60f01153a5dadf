"""Small fakes for driving the runtime driver without the real core, storage or network.

FakeNode is a scripted single-node "core": a leader that commits whatever it has
persisted (advance() is its self-ack). Tests flip its role, inject Ready fields and watch
the order in which the driver persists, sends and applies through a shared journal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kvraft.core.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    InstallSnapshot,
    Message,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
    SoftState,
    encode_conf_change,
)
from kvraft.errors import NotLeader, StorageError
from kvraft.runtime.base import LocalSnapshot


@dataclass
class Journal:
    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def index(self, prefix: str) -> int:
        for i, e in enumerate(self.events):
            if e.startswith(prefix):
                return i
        raise AssertionError(f"no event {prefix!r} in {self.events}")


class FakeNode:
    def __init__(self, journal: Journal, node_id: int = 1) -> None:
        self.journal = journal
        self.id = node_id
        self.term = 1
        self.leader = node_id
        self.role = Role.LEADER
        self.conf_state = ConfState(voters=frozenset({node_id}))
        self.commit = 0
        self.applied = 0
        self.log: list[Entry] = []  # all entries, index i at position i-1
        self.handed = 0  # last entry index handed out in a Ready
        self.durable = 0  # last entry index advanced (durable)
        self.applied_handed = 0  # last committed index handed out
        self.outstanding = False
        self.ticks = 0
        self.stepped: list[Message] = []
        self.extra: dict[str, object] = {}  # Ready fields to inject into the next Ready
        self.pending_reads: list[int] = []
        self.conf_changes: list[ConfChange] = []
        self.soft_dirty = False
        self.snapshot_reports: list[tuple[int, bool]] = []

    # -- inputs
    def tick(self) -> None:
        self.ticks += 1

    def step(self, msg: Message) -> None:
        self.stepped.append(msg)
        if isinstance(msg, InstallSnapshot):
            self.extra["snapshot"] = msg.meta

    def campaign(self) -> None:
        self.become(Role.LEADER, self.term + 1, self.id)

    def propose(self, data: bytes) -> int:
        return self._append(EntryType.NORMAL, data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        return self._append(EntryType.CONF_CHANGE, encode_conf_change(cc))

    def _append(self, kind: EntryType, data: bytes) -> int:
        if self.role != Role.LEADER:
            raise NotLeader(self.leader)
        e = Entry(self.term, len(self.log) + 1, kind, data)
        self.log.append(e)
        return e.index

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        self.conf_changes.append(cc)
        self.conf_state = ConfState(voters=self.conf_state.voters | {cc.node_id})
        return self.conf_state

    def read_index(self, request_id: int, *, lease: bool = False) -> None:
        if self.role != Role.LEADER:
            raise NotLeader(self.leader)
        self.pending_reads.append(request_id)

    def transfer_leadership(self, to: int) -> None:
        self.become(Role.FOLLOWER, self.term, to)

    def report_unreachable(self, node_id: int) -> None:
        pass

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.snapshot_reports.append((node_id, ok))

    # -- test controls
    def become(self, role: Role, term: int, leader: int) -> None:
        self.role, self.term, self.leader = role, term, leader
        self.soft_dirty = True

    def replace_tail(self, index: int, term: int) -> None:
        """Another leader's entry overwrote ours at ``index``; it is now committed."""
        del self.log[index - 1 :]
        self.log.append(Entry(term, index))
        self.handed = min(self.handed, index - 1)
        self.durable = min(self.durable, index - 1)

    # -- Ready
    def has_ready(self) -> bool:
        if self.outstanding:
            return False
        return bool(
            len(self.log) > self.handed
            or self.durable > self.applied_handed
            or self.extra
            or self.soft_dirty
            or (self.pending_reads and self.role == Role.LEADER)
        )

    def ready(self) -> Ready:
        assert not self.outstanding, "two Readys outstanding"
        self.outstanding = True
        entries = tuple(self.log[self.handed :])
        self.handed = len(self.log)
        committed = tuple(self.log[self.applied_handed : self.durable])
        self.applied_handed = self.durable
        reads = tuple(ReadState(r, self.durable) for r in self.pending_reads)
        self.pending_reads = []
        soft = None
        if self.soft_dirty:
            soft = SoftState(self.leader, self.role, self.term)
            self.soft_dirty = False
        fields: dict[str, object] = dict(
            entries=entries,
            committed_entries=committed,
            read_states=reads,
            soft_state=soft,
            hard_state=HardState(self.term, self.id, self.durable) if entries else None,
        )
        fields.update(self.extra)
        self.extra = {}
        return Ready(**fields)  # type: ignore[arg-type]

    def advance(self, rd: Ready) -> None:
        assert self.outstanding
        self.outstanding = False
        self.journal.add("advance")
        if rd.entries:
            self.durable = max(self.durable, rd.entries[-1].index)
        if rd.snapshot is not None:
            self.durable = self.applied_handed = rd.snapshot.index
            self.handed = max(self.handed, rd.snapshot.index)
            self.log = [Entry(rd.snapshot.term, i + 1) for i in range(rd.snapshot.index)]
        if rd.committed_entries:
            self.applied = rd.committed_entries[-1].index
        self.commit = self.durable

    def status(self) -> dict[str, object]:
        return {"id": self.id, "term": self.term, "role": self.role.name}


class FakeLog:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.saves: list[tuple[Sequence[Entry], HardState | None, SnapshotMeta | None]] = []
        self.gate = threading.Event()  # save() blocks until set
        self.gate.set()
        self.fail_with: Exception | None = None
        self.meta = SnapshotMeta()
        self.last = 0
        self.compactions: list[SnapshotMeta] = []
        self.conf_states: list[ConfState] = []
        self.hard = HardState(1, 1, 0)  # what initial_state() reports

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard, ConfState(voters=frozenset({1}))

    def save(self, *, entries: Sequence[Entry] = (), hard_state: HardState | None = None,
             snapshot: SnapshotMeta | None = None) -> None:
        self.gate.wait(10)
        if self.fail_with is not None:
            raise self.fail_with
        self.journal.add(f"save entries={len(entries)}")
        self.saves.append((tuple(entries), hard_state, snapshot))
        if snapshot is not None:
            self.meta = snapshot
            self.last = max(self.last, snapshot.index)
        if entries:
            self.last = entries[-1].index

    def compact(self, meta: SnapshotMeta) -> None:
        self.journal.add(f"compact {meta.index}")
        self.compactions.append(meta)
        self.meta = meta

    def save_conf_state(self, cs: ConfState) -> None:
        self.conf_states.append(cs)

    def term(self, index: int) -> int:
        return 1

    def first_index(self) -> int:
        return self.meta.index + 1

    def last_index(self) -> int:
        return self.last

    def snapshot_meta(self) -> SnapshotMeta:
        return self.meta


class FakeStateMachine:
    """Applies commands as "key=value" into a dict; results are the applied index."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.data: dict[bytes, bytes] = {}
        self.index = 0
        self.term = 0
        self.conf: ConfState | None = None
        self.applies = 0
        self.restored: list[tuple[str, SnapshotMeta]] = []
        self.snapshots_written = 0
        self.commit_gate = threading.Event()  # cleared: apply holds after `staged`
        self.commit_gate.set()

    def applied(self) -> tuple[int, int]:
        return self.index, self.term

    def apply(self, entries: Sequence[Entry], conf_state: ConfState | None,
              staged: Callable[[Sequence[object | None]], None] | None = None,
              ) -> list[object | None]:
        self.journal.add(f"apply {entries[0].index}..{entries[-1].index}")
        assert entries[0].index == self.index + 1, (entries[0].index, self.index)
        self.applies += 1
        out: list[object | None] = []
        for e in entries:
            if e.type == EntryType.NORMAL and e.data:
                k, _, v = e.data.partition(b"=")
                self.data[k] = v
                out.append(e.index)
            else:
                out.append(None)
        if staged is not None:
            staged(out)
        self.commit_gate.wait()  # the "commit" of the state; tests may hold it
        self.index, self.term = entries[-1].index, entries[-1].term
        if conf_state is not None:
            self.conf = conf_state
        return out

    def write_snapshot(self) -> LocalSnapshot:
        self.snapshots_written += 1
        meta = SnapshotMeta(self.index, self.term, self.conf or ConfState())
        return LocalSnapshot(f"/snap/{self.index}", meta, 10)

    def restore_snapshot(self, path: str, meta: SnapshotMeta) -> LocalSnapshot:
        self.journal.add(f"restore {path}")
        self.restored.append((path, meta))
        self.index, self.term = meta.index, meta.term
        return LocalSnapshot(path, meta, 10)


class FakeTransport:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.sent: list[Message] = []
        self.snapshots: list[tuple[InstallSnapshot, LocalSnapshot]] = []
        self.peers: dict[int, str] = {}

    def send(self, messages: Sequence[Message]) -> None:
        for m in messages:
            self.journal.add(f"send {type(m).__name__} {m.dst}")
        self.sent.extend(messages)

    def send_snapshot(self, message: InstallSnapshot, snapshot: LocalSnapshot) -> None:
        self.snapshots.append((message, snapshot))

    def set_peers(self, peers: Mapping[int, str]) -> None:
        self.peers = dict(peers)


def fail_storage() -> Exception:
    return StorageError("disk on fire")


class FakeJointLog(FakeLog):
    """A FakeLog whose save runs ``extra`` inside the "transaction" (LmdbLogStore's way)."""

    def save(self, *, entries: Sequence[Entry] = (), hard_state: HardState | None = None,
             snapshot: SnapshotMeta | None = None,
             extra: Callable[[object], None] | None = None) -> None:
        super().save(entries=entries, hard_state=hard_state, snapshot=snapshot)
        if extra is not None:
            extra(self)


class FakeJointStateMachine(FakeStateMachine):
    """A FakeStateMachine that can apply inside a FakeJointLog's save (journal: "joined")."""

    def joint_apply(self, log: object) -> Callable[..., Sequence[object | None]] | None:
        if not isinstance(log, FakeJointLog):
            return None

        def apply_in(
            txn: object, entries: Sequence[Entry], conf_state: ConfState | None,
            staged: Callable[[Sequence[object | None]], None] | None = None,
        ) -> Sequence[object | None]:
            self.journal.add("joined")
            return self.apply(entries, conf_state, staged)

        return apply_in


class FakePredictingStateMachine(FakeJointStateMachine):
    """A FakeJointStateMachine with a dry run (runtime.base.PredictingStateMachine): the
    result of a command is its index. ``apply_gate`` cleared holds every apply before it
    starts; ``lie`` makes the dry run predict wrong results."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal)
        self.apply_gate = threading.Event()
        self.apply_gate.set()
        self.lie = False
        self.predicted: list[int] = []  # indexes predicted, in order

    def apply(self, entries: Sequence[Entry], conf_state: ConfState | None,
              staged: Callable[[Sequence[object | None]], None] | None = None,
              ) -> list[object | None]:
        self.apply_gate.wait()
        return super().apply(entries, conf_state, staged)

    def predict(self, entries: Sequence[Entry]) -> list[object | None]:
        if not entries or entries[0].index != self.index + 1:
            return []
        out: list[object | None] = []
        for e in entries:
            if e.type != EntryType.NORMAL:
                break
            out.append((e.index + 100 if self.lie else e.index) if e.data else None)
            self.predicted.append(e.index)
        return out

    def result_key(self, result: object | None) -> bytes:
        return repr(result).encode()
