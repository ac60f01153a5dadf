"""The persistent KV state store: its records and its contract (a ``typing.Protocol``).

The KV state machine (``kvraft/kv``) keeps everything it owns here: the keys with their
revisions, the cluster revision, the applied position, the client-session table, the
membership in force at the applied index, the members' addresses (from applied
CONF_CHANGE entries: replicated state, so a snapshot carries them) and the log time used
to expire sessions.

Contract (every implementation):

- ``read()`` opens a consistent read view (a snapshot in time) that never blocks writers
  and is never blocked by them; many may be open at once, from any thread, but one view is
  used by one thread.
- ``write()`` opens the only write view. Everything written through it - keys, sessions,
  applied position, revision, conf state - becomes durable together when the ``with``
  block ends normally, or not at all (the block raised, or the process died). So a restart
  resumes exactly from ``applied()`` without replaying the log from zero.
- Every stored record carries a checksum; reading a damaged one raises
  :class:`kvraft.errors.Corrupted` naming the database and the key.
- ``export()`` / ``replace()`` serve snapshots: one consistent view of everything, and an
  atomic swap of everything (a crash half way leaves the old state or the new one).

The store knows nothing of command semantics (revisions are *stored* here, *decided* by the
state machine) and nothing of Raft beyond the public types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from kvraft.core.types import ConfState


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One live key, as etcd describes it."""

    key: bytes
    """Non-empty."""
    value: bytes
    create_revision: int
    """Revision of the command that created this incarnation of the key (> 0)."""
    mod_revision: int
    """Revision of the last command that wrote it; create_revision <= mod_revision."""
    version: int
    """Writes since creation: 1 after the create; a delete ends the incarnation."""


@dataclass(frozen=True, slots=True)
class Session:
    """A client session's exactly-once memory (Raft dissertation section 6.3)."""

    client_id: int
    """Non-zero (0 means "no session")."""
    last_seq: int
    """Highest sequence number applied for this client."""
    last_seen_ms: int
    """Log time (a command's ``time_ms``, never a local clock) of its last command."""
    result: bytes
    """Encoded result of the command ``last_seq``, returned again on a retry."""


@dataclass(frozen=True, slots=True)
class StatePosition:
    """Where the state stands: the last applied entry and the state-wide counters."""

    index: int = 0
    """Index of the last applied log entry (0 = nothing applied)."""
    term: int = 0
    """Term of that entry."""
    revision: int = 0
    """Cluster revision: bumped once per command that changes a key; 0 on an empty store."""
    log_time_ms: int = 0
    """Highest command time seen in the log; never decreases."""
    conf_state: ConfState = field(default_factory=ConfState)
    """Membership in force at ``index`` (saved by the runtime with the applied index)."""


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    """Keys in [start, end) in byte order, at most ``limit`` of them."""
    more: bool
    """True if the range holds keys beyond the ones returned."""
    count: int
    """Number of keys in the whole range (ignoring ``limit``)."""


class StateReader(Protocol):
    """A consistent view of the state. Not thread-safe: one thread per view."""

    def position(self) -> StatePosition:
        """Applied index/term, revision, log time and membership, as of this view."""
        ...

    def get(self, key: bytes) -> KeyValue | None:
        """The live key, or None. O(log n). Raises Corrupted on a damaged record."""
        ...

    def range(
        self, start: bytes, end: bytes | None = None, *, limit: int = 0, count: bool = True
    ) -> RangeResult:
        """Keys k with start <= k < end (``end=None``: no upper bound) in byte order.

        ``limit`` > 0 caps the keys returned. With ``count=False`` the scan stops at the
        limit and ``count`` is only a lower bound (``len(kvs)`` + 1 if ``more``)."""
        ...

    def session(self, client_id: int) -> Session | None:
        """The session of ``client_id``, or None if it has none (or it expired)."""
        ...

    def sessions_seen_before(self, time_ms: int, limit: int) -> list[int]:
        """Up to ``limit`` client ids whose last_seen_ms < time_ms, oldest first.
        Cost grows with the answer, not with the table."""
        ...

    def members(self) -> dict[int, str] | None:
        """Member id -> address ("host:port") as applied; None if no record was ever
        written (a store from a build that did not replicate addresses)."""
        ...


class StateWriter(StateReader, Protocol):
    """The write view: reads see this view's own writes. See ``StateStore.write``."""

    def put(self, kv: KeyValue) -> None:
        """Store ``kv`` (replacing any record of the same key)."""
        ...

    def delete(self, key: bytes) -> bool:
        """Remove the key; False if it was not there."""
        ...

    def put_session(self, session: Session) -> None:
        """Store ``session``, replacing (and re-indexing by time) any older one."""
        ...

    def delete_session(self, client_id: int) -> bool:
        """Forget the session; False if there was none."""
        ...

    def set_position(self, position: StatePosition) -> None:
        """Record the applied position, revision, log time and membership."""
        ...

    def set_members(self, members: Mapping[int, str]) -> None:
        """Replace the member address record (ids > 0, non-empty addresses)."""
        ...


class StateExport(Protocol):
    """A consistent view of the whole state for a snapshot (see ``StateStore.export``)."""

    position: StatePosition
    members: dict[int, str] | None
    """The member address record of the same view (None: never written)."""

    def key_values(self) -> Iterator[KeyValue]:
        """Every key, in byte order of the keys."""
        ...

    def sessions(self) -> Iterator[Session]:
        """Every session, by client id."""
        ...


class StateStore(Protocol):
    def read(self) -> AbstractContextManager[StateReader]:
        """A read view, valid inside the ``with`` block only."""
        ...

    def write(self) -> AbstractContextManager[StateWriter]:
        """The write view: all or nothing, committed durably when the block ends normally,
        discarded if it raises. One at a time (a second one waits)."""
        ...

    def position(self) -> StatePosition:
        """Shortcut: ``position()`` of a fresh read view."""
        ...

    def export(self) -> AbstractContextManager[StateExport]:
        """A consistent, streaming view of everything, for writing a snapshot. Holds no
        more than one record in memory at a time and never blocks writers."""
        ...

    def replace(
        self, position: StatePosition, key_values: Iterable[KeyValue], sessions: Iterable[Session],
        members: Mapping[int, str] | None = None,
    ) -> None:
        """Atomically replace the whole state with the given one (snapshot restore);
        ``members`` None leaves no address record (as in a snapshot of an older build).

        The iterables are consumed inside one write transaction; if either raises, nothing
        changes (the exception propagates). ``key_values`` must be in key order and without
        duplicates (AssertionError otherwise, nothing changes)."""
        ...
