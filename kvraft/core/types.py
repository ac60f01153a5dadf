"""Public types of the Raft core: log entries, persistent state, membership, messages, Ready.

Everything here is stdlib-only, immutable (frozen, slotted dataclasses) and shared with
the storage, transport and runtime layers. Don't subclass these.

Conventions
- Node ids are positive ints; ``NONE == 0`` means "no node" (no vote, no known leader).
- Log indexes start at 1; index 0 with term 0 is the empty log's sentinel.
- Every message carries ``src``, ``dst`` and the sender's ``term``. Responses are separate
  one-way messages, so a network may drop, duplicate, delay and reorder any of them.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

NONE = 0
"""The node id that means "nobody"."""


# ============================================================================ log entries
class EntryType(enum.IntEnum):
    NORMAL = 0
    """Application data; an entry with empty data is the leader's no-op."""
    CONF_CHANGE = 1
    """``data`` is an encoded :class:`ConfChange` (see :func:`encode_conf_change`)."""


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate encoded size in bytes, used for flow control by bytes."""
        return len(self.data) + 24


def extend_within(
    out: list[Entry], more: Iterable[Entry], size: int, max_bytes: int | None,
) -> list[Entry]:
    """``out`` (whose entries' sizes total ``size``) extended with ``more`` in order,
    stopping before the total would exceed ``max_bytes`` (None: no limit); ``out`` gets
    at least one entry if ``more`` has any. Returns ``out``."""
    if max_bytes is None:
        out.extend(more)
        return out
    for e in more:
        size += e.size()
        if out and size > max_bytes:
            break
        out.append(e)
    return out


# ============================================================================ persistent state
@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it leaves the node."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """Cluster membership.

    ``voters_outgoing`` is non-empty only in a joint configuration (joint consensus);
    a decision then needs a majority of ``voters`` AND of ``voters_outgoing``.
    Learners receive the log but never vote and never count toward commit.

    ``removed`` holds every node id a REMOVE_NODE entry ever took out of the cluster
    (disjoint from ``all_nodes()``). Ids are never reused, as in etcd: a node that comes
    back under a removed id with an empty data dir would replay old memberships (say
    voters {1}) from index 1 and could elect itself alone. Stored dicts and messages
    written before this field existed read as "nothing removed".
    """

    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()
    voters_outgoing: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()

    def all_nodes(self) -> frozenset[int]:
        return self.voters | self.learners | self.voters_outgoing

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "voters": sorted(self.voters),
            "learners": sorted(self.learners),
            "voters_outgoing": sorted(self.voters_outgoing),
            "removed": sorted(self.removed),
        }

    @staticmethod
    def from_dict(d: dict[str, list[int]]) -> ConfState:
        """Inverse of :meth:`to_dict`; a missing key means an empty set."""
        return ConfState(
            voters=frozenset(d.get("voters", ())),
            learners=frozenset(d.get("learners", ())),
            voters_outgoing=frozenset(d.get("voters_outgoing", ())),
            removed=frozenset(d.get("removed", ())),
        )


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Describes a snapshot: the state machine up to and including ``index`` (whose entry
    had ``term``), and the membership in force at that index. The snapshot's bytes live
    outside the core (a file streamed by the transport); the core only sees this."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


# ============================================================================ membership changes
class ConfChangeType(enum.IntEnum):
    ADD_VOTER = 0
    """Add a voter, or promote an existing learner to voter."""
    ADD_LEARNER = 1
    """Add a non-voting member."""
    REMOVE_NODE = 2
    """Remove a voter or a learner."""


@dataclass(frozen=True, slots=True)
class ConfChange:
    type: ConfChangeType
    node_id: int
    context: bytes = b""
    """Opaque to the core; the server stores the new member's address here."""


def encode_conf_change(cc: ConfChange) -> bytes:
    """Encode a ConfChange as entry data (stable, stdlib-only, human-readable JSON)."""
    return json.dumps(
        {"type": int(cc.type), "node_id": cc.node_id, "context": cc.context.hex()},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def decode_conf_change(data: bytes) -> ConfChange:
    """Inverse of :func:`encode_conf_change`. Raises ValueError on malformed data."""
    try:
        d = json.loads(data)
        return ConfChange(
            type=ConfChangeType(int(d["type"])),
            node_id=int(d["node_id"]),
            context=bytes.fromhex(d.get("context", "")),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed conf change entry: {exc}") from exc


# ============================================================================ messages
@dataclass(frozen=True, slots=True)
class AppendEntries:
    """Leader -> follower: append ``entries`` after (prev_index, prev_term)."""

    src: int
    dst: int
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[Entry, ...]
    commit: int


@dataclass(frozen=True, slots=True)
class AppendResponse:
    """Follower -> leader. On success ``index`` is the last index now known to match.
    On reject, ``index`` echoes the rejected prev_index and (hint_index, hint_term) let
    the leader skip a whole conflicting term at once (fast backtracking)."""

    src: int
    dst: int
    term: int
    index: int
    reject: bool = False
    hint_index: int = 0
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class RequestVote:
    """Candidate -> voter. With ``pre_vote`` it asks "would you vote for me?" without the
    voter changing its term or vote; ``term`` is then the term the candidate would use.
    ``transfer`` marks a campaign started by TimeoutNow (voters skip the leader-lease
    check)."""

    src: int
    dst: int
    term: int
    last_index: int
    last_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    src: int
    dst: int
    term: int
    granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Leader -> follower: keeps leadership and carries the commit index (never beyond
    what the follower is known to hold). ``context`` is non-zero when the heartbeat round
    confirms leadership for ReadIndex requests."""

    src: int
    dst: int
    term: int
    commit: int
    context: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    src: int
    dst: int
    term: int
    context: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """Leader -> follower: replace your state with the leader's latest snapshot.

    The core only emits the metadata. The transport streams the snapshot's bytes (which
    the runtime's snapshot store holds for ``meta.index``) and, on the receiving side,
    steps this message into the follower's core once all bytes are on disk."""

    src: int
    dst: int
    term: int
    meta: SnapshotMeta


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leader -> transfer target: campaign now, skipping pre-vote."""

    src: int
    dst: int
    term: int


Message = (
    AppendEntries
    | AppendResponse
    | RequestVote
    | VoteResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
)
"""Every message the core sends or receives."""


# ============================================================================ Ready
class Role(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3
    LEARNER = 4
    """A node that is a learner in the current configuration (never campaigns)."""


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state for routing and metrics; need not be persisted."""

    leader: int
    role: Role
    term: int


@dataclass(frozen=True, slots=True)
class ReadState:
    """A ReadIndex result: serve request ``request_id`` once applied >= ``index``."""

    request_id: int
    index: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the outside world must do, in this order (DESIGN.md):

    1. persist ``snapshot``, ``entries`` and ``hard_state`` in one durable write;
    2. send ``persisted_messages`` (``messages`` may be sent before step 1);
    3. apply ``committed_entries`` and serve ``read_states``;
    4. call ``advance(ready)``.

    ``dropped_reads`` lists ReadIndex request ids the core will never answer (leadership
    lost, term changed); the runtime fails them with "not leader" at once.
    """

    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: SnapshotMeta | None = None
    messages: tuple[Message, ...] = ()
    persisted_messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    dropped_reads: tuple[int, ...] = ()
    soft_state: SoftState | None = None

    def is_empty(self) -> bool:
        return (
            self.hard_state is None
            and not self.entries
            and self.snapshot is None
            and not self.messages
            and not self.persisted_messages
            and not self.committed_entries
            and not self.read_states
            and not self.dropped_reads
            and self.soft_state is None
        )


# ============================================================================ storage view
class LogReader(Protocol):
    """The core's read-only view of what is already durable (a subset of LogStore).

    The core never writes through this; it learns about new durable state only via
    ``advance(ready)`` and explicit calls such as ``compacted(meta)``.
    """

    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and membership (membership of the latest snapshot,
        or as last saved by the runtime when applying a conf change)."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries with index in [lo, hi). Returns at least one entry if lo < hi, then
        stops before the total size would exceed ``max_bytes``. Raises Compacted if
        lo < first_index(), Unavailable if hi > last_index() + 1."""
        ...

    def term(self, index: int) -> int:
        """Term of entry ``index``; valid for first_index()-1 <= index <= last_index()
        (first_index()-1 is the snapshot's index, answered from its metadata). Raises
        Compacted below that range and Unavailable above it."""
        ...

    def first_index(self) -> int:
        """Index of the first entry still in the log (snapshot index + 1)."""
        ...

    def last_index(self) -> int:
        """Index of the last durable entry (snapshot index if the log is empty)."""
        ...

    def snapshot_meta(self) -> SnapshotMeta:
        """Metadata of the latest snapshot (index 0 if none)."""
        ...
