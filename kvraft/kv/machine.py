"""KvStateMachine: applies committed log entries to the persistent KV state.

Rules (all deterministic: a result depends only on the entries and the state before them;
never on a clock, a node's configuration beyond the cluster-wide session TTL, or how the
runtime batches entries):

- ``apply(entries, conf_state)`` writes everything in ONE state-store transaction together
  with the new applied position (index/term of the last entry), the cluster revision, the
  log time and, if given, the membership. A crash leaves all of it or none of it.
- NORMAL entries with empty data (leader no-ops) and CONF_CHANGE entries advance the
  applied position (result None); a CONF_CHANGE also keeps the member address record
  (replicated state, carried by snapshots): a non-empty context is the member's address
  (recorded unless the id was removed for good), REMOVE_NODE drops the id's address.
  Other NORMAL entries hold a ``kvraft.v1.Command``; the result of each is a
  ``CommandResult`` (a response, or an ``ApplyError``).
- Revisions follow kv.proto / etcd (see ``ops.py``); a command that changes no key (a
  failed txn without writes, a delete of nothing) leaves the revision alone. The header
  revision of a result is the cluster revision right after that command.
- Exactly-once (Raft dissertation 6.3): for a session (client_id != 0) the state remembers
  the last applied seq and its result. The same seq again returns the stored result
  without applying; an older seq gets ABORTED ("stale sequence number") and changes
  nothing. So a client keeps at most one write in flight per session (use several
  sessions for concurrency).
- Log time = the highest ``Command.time_ms`` seen. Sessions not seen for
  ``session_ttl_ms`` of log time are expired, at most ``EXPIRE_PER_COMMAND`` per command
  (oldest first), so expiry costs O(1) per command. The TTL must be the same on every node.
- A malformed or structurally invalid command (see ``validate.py``) yields an
  INVALID_ARGUMENT result and changes nothing but the session's memory of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.core.types import (
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    SnapshotMeta,
    decode_conf_change,
)
from kvraft.errors import SnapshotError
from kvraft.kv import ops
from kvraft.kv.command import ABORTED, INVALID_ARGUMENT, decode_result, error_result
from kvraft.kv.dry_run import DryRunWriter, Unpredictable
from kvraft.kv.validate import InvalidRequest, validate_command
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir, SnapshotInfo, read_info, restore
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import Session, StatePosition, StateStore, StateWriter

DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000
"""One hour of log time without a write ends a session (cluster-wide setting)."""
JointApply = Callable[
    [object, Sequence[Entry], ConfState | None, Callable[[list[Any | None]], None] | None],
    list[Any | None],
]
"""``apply`` into an open write transaction of the log store, which the caller commits:
(txn, entries, conf_state, staged) -> results. See ``KvStateMachine.joint_apply``."""
EXPIRE_PER_COMMAND = 16
"""Most sessions expired while applying one command (bounds the cost of each apply)."""


@dataclass(slots=True)
class _Counters:
    """State-wide counters carried through one apply batch."""

    revision: int  # cluster revision after the last applied command
    log_time_ms: int  # highest Command.time_ms applied so far


class _Members:
    """The member address record carried through one apply batch."""

    def __init__(self, addresses: dict[int, str], removed: frozenset[int]) -> None:
        self.addresses = addresses  # id -> address after the entries seen so far
        self.removed = set(removed)  # ids removed for good (never re-added, never recorded)
        self.changed = False  # True once addresses differs from the stored record

    def apply(self, data: bytes) -> None:
        try:
            cc = decode_conf_change(data)
        except ValueError:
            return  # the runtime stops on such an entry before it reaches us
        if cc.type == ConfChangeType.REMOVE_NODE:
            self.removed.add(cc.node_id)
            self.changed |= self.addresses.pop(cc.node_id, None) is not None
            return
        address = cc.context.decode(errors="replace")
        if address and cc.node_id not in self.removed and (
            self.addresses.get(cc.node_id) != address
        ):
            self.addresses[cc.node_id] = address
            self.changed = True


class KvStateMachine:
    """The KV state machine over a StateStore and a snapshot directory.

    Threads: ``apply`` and ``restore_snapshot`` run on one thread at a time (the runtime's
    I/O thread); ``range``/``get``/``write_snapshot`` may run concurrently from others
    (each uses its own read view)."""

    def __init__(
        self,
        store: StateStore,
        snapshots: SnapshotDir,
        *,
        session_ttl_ms: int = DEFAULT_SESSION_TTL_MS,
    ) -> None:
        assert session_ttl_ms > 0
        self._store = store  # the persistent state; this object is its only writer
        self._snapshots = snapshots  # where snapshots are written and received ones kept
        self._ttl = session_ttl_ms  # sessions idle longer than this (log time) expire

    # ------------------------------------------------------------------ position
    def applied(self) -> tuple[int, int]:
        """(index, term) of the last applied entry; (0, 0) on a fresh store."""
        pos = self._store.position()
        return pos.index, pos.term

    def position(self) -> StatePosition:
        return self._store.position()

    def members(self) -> dict[int, str] | None:
        """Member id -> address as applied (None: the store has no record, e.g. one
        written by an older build). Any thread."""
        with self._store.read() as r:
            return r.members()

    def seed_members(self, addresses: dict[int, str]) -> bool:
        """Write ``addresses`` as the member record if the store has none (upgrading a
        data dir of an older build from its address cache); True if written. Call
        before the runtime starts (it writes outside any applied entry)."""
        with self._store.write() as w:
            if w.members() is not None:
                return False
            w.set_members({i: a for i, a in addresses.items() if i > 0 and a})
            return True

    # ------------------------------------------------------------------ apply
    def apply(
        self, entries: Sequence[Entry], conf_state: ConfState | None = None,
        staged: Callable[[list[Any | None]], None] | None = None,
    ) -> list[Any | None]:
        """Apply ``entries`` (contiguous from applied()+1) in one durable transaction;
        ``conf_state`` (if not None) is the membership in force after the last entry.
        Returns one CommandResult (or None for no-ops and conf changes) per entry.
        ``staged`` (if given) is called with those results once they are computed and
        before the transaction commits, so the caller may answer waiting clients while
        the commit's fsync runs (the entries are already durable in the Raft log).
        Raises only StorageError/Corrupted (the node must stop)."""
        if not entries:
            return []
        with self._store.write() as w:
            return self._apply_batch(w, entries, conf_state, staged)

    def joint_apply(self, log: object) -> JointApply | None:
        """The apply that writes into a write transaction of ``log`` (see JointApply), or
        None if this state does not live in ``log``'s transactional store (only an
        LMDB state store in the LMDB log store's own environment does)."""
        store = self._store
        if not isinstance(store, LmdbStateStore) or not isinstance(log, LmdbLogStore):
            return None
        if store.env is not log.env:
            return None

        def apply_in(
            txn: object, entries: Sequence[Entry], conf_state: ConfState | None,
            staged: Callable[[list[Any | None]], None] | None = None,
        ) -> list[Any | None]:
            if not entries:
                return []
            return self._apply_batch(store.write_in(txn), entries, conf_state, staged)

        return apply_in

    def _apply_batch(
        self, w: StateWriter, entries: Sequence[Entry], conf_state: ConfState | None,
        staged: Callable[[list[Any | None]], None] | None,
    ) -> list[Any | None]:
        """``apply``'s writes into the open write view ``w`` (committed by the caller)."""
        results: list[Any | None] = []
        pos = w.position()
        counters = _Counters(pos.revision, pos.log_time_ms)
        index = pos.index
        members: _Members | None = None  # loaded at the batch's first conf change
        for e in entries:
            assert e.index == index + 1, f"apply: entry {e.index} after applied {index}"
            index = e.index
            if e.type == EntryType.NORMAL and e.data:
                results.append(self._apply_command(w, e.data, counters))
                continue
            if e.type == EntryType.CONF_CHANGE:
                members = members or _Members(w.members() or {}, pos.conf_state.removed)
                members.apply(e.data)
            results.append(None)
        if members is not None and members.changed:
            w.set_members(members.addresses)
        last = entries[-1]
        w.set_position(
            StatePosition(
                index=last.index,
                term=last.term,
                revision=counters.revision,
                log_time_ms=counters.log_time_ms,
                conf_state=pos.conf_state if conf_state is None else conf_state,
            )
        )
        if staged is not None:
            staged(results)
        return results

    def predict(self, entries: Sequence[Entry]) -> list[Any | None]:
        """The results ``apply`` will return for a prefix of ``entries`` (maybe empty),
        from a dry run on a read view that writes nothing. Only when the state stands
        right before ``entries[0]``: a result depends on nothing but the state before its
        entry and the entry, so these are the results of those entries whenever they
        are applied. Stops at a membership change and at a command whose dry run would
        need a range scan (see dry_run.py). Any thread."""
        out: list[Any | None] = []
        with self._store.read() as r:
            pos = r.position()
            if not entries or entries[0].index != pos.index + 1:
                return out
            w = DryRunWriter(r)
            counters = _Counters(pos.revision, pos.log_time_ms)
            for e in entries:
                if e.type != EntryType.NORMAL:
                    break
                if not e.data:  # a leader's no-op
                    out.append(None)
                    continue
                try:
                    out.append(self._apply_command(w, e.data, counters))
                except Unpredictable:
                    break
        return out

    @staticmethod
    def result_key(result: Any | None) -> bytes:
        """Equal for equal results (compares a prediction with the real apply's result)."""
        return b"" if result is None else bytes(result.SerializeToString(deterministic=True))

    def _apply_command(self, w: StateWriter, data: bytes, c: _Counters) -> Any:
        try:
            cmd = pb.Command.FromString(data)
        except DecodeError:
            return error_result(INVALID_ARGUMENT, "malformed command: not a kvraft.v1.Command")
        c.log_time_ms = max(c.log_time_ms, cmd.time_ms)
        self._expire_sessions(w, c.log_time_ms)
        client, seq = cmd.session.client_id, cmd.session.seq
        if client and seq:
            session = w.session(client)
            if session is not None and seq == session.last_seq:
                return decode_result(session.result)
            if session is not None and seq < session.last_seq:
                return error_result(
                    ABORTED,
                    f"stale sequence number {seq} for client {client}: the session has "
                    f"moved on to {session.last_seq}; its result is no longer kept",
                )
        result = self._execute(w, cmd, c)
        if client and seq:
            encoded = result.SerializeToString(deterministic=True)
            w.put_session(Session(client, seq, c.log_time_ms, encoded))
        return result

    def _execute(self, w: StateWriter, cmd: Any, c: _Counters) -> Any:
        try:
            validate_command(cmd, None)
        except InvalidRequest as exc:
            return error_result(INVALID_ARGUMENT, str(exc))
        rev = c.revision + 1  # the revision of this command's writes, if it makes any
        kind = cmd.WhichOneof("op")
        if kind == "put":
            put = ops.put(w, cmd.put, rev)
            c.revision = rev
            put.header.revision = rev
            return pb.CommandResult(put=put)
        if kind == "delete_range":
            deleted = ops.delete_range(w, cmd.delete_range)
            if deleted.deleted:
                c.revision = rev
            deleted.header.revision = c.revision
            return pb.CommandResult(delete_range=deleted)
        txn, changed = ops.txn(w, cmd.txn, rev)
        if changed:
            c.revision = rev
        txn.header.revision = c.revision
        return pb.CommandResult(txn=txn)

    def _expire_sessions(self, w: StateWriter, log_time_ms: int) -> None:
        cutoff = log_time_ms - self._ttl
        if cutoff <= 0:
            return
        for client in w.sessions_seen_before(cutoff, EXPIRE_PER_COMMAND):
            w.delete_session(client)

    # ------------------------------------------------------------------ reads
    def range(self, req: Any) -> Any:
        """Serve a validated RangeRequest from local state (one consistent read view).
        The header carries the revision of that view; the caller fills in node, term and
        leader. Linearizability is the caller's business (ReadIndex before calling)."""
        with self._store.read() as r:
            resp = ops.read_range(r, req)
            resp.header.revision = r.position().revision
        return resp

    # ------------------------------------------------------------------ snapshots
    def write_snapshot(self) -> SnapshotInfo:
        """Snapshot one consistent view of the state into the snapshot directory (prunes
        old ones). May run on another thread while ``apply`` goes on."""
        return self._snapshots.create(self._store)

    def latest_snapshot(self) -> SnapshotInfo | None:
        return self._snapshots.latest()

    def restore_snapshot(self, path: str | Path, meta: SnapshotMeta | None = None) -> SnapshotInfo:
        """Replace the whole state by the snapshot file ``path`` atomically and keep the
        file as the latest snapshot: a file in the snapshot directory (e.g. received into
        ``SnapshotDir.incoming()``) is moved into place, a file elsewhere is copied.
        Raises SnapshotError if the file is damaged or does not stand for ``meta``; the
        old state then stays."""
        path = Path(path)
        header = read_info(path).meta
        if meta is not None and (header.index, header.term) != (meta.index, meta.term):
            raise SnapshotError(
                f"snapshot {path} holds index {header.index} term {header.term}, "
                f"expected index {meta.index} term {meta.term}"
            )
        if path.parent.resolve() != self._snapshots.path.resolve():
            incoming = self._snapshots.incoming()
            shutil.copyfile(path, incoming)
            path = incoming
        if path != self._snapshots.path_for(header.index, header.term):
            path = self._snapshots.install(path).path
        return restore(self._store, path)
