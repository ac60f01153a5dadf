"""The follower's side of replication: AppendEntries, heartbeats and snapshots received.

A mixin of ``Raft`` (raft.py states the rules in its docstring -- "Replication" and
"Snapshots" -- and decides, in ``step``, that a message reaches these handlers: of the
current term, from the leader, on a node that is not the leader). State is owned and
documented by ``Raft``.

Every success answer is an append ack that promises durable entries, so it is queued in
``msgs_after_append`` (``_ack_after_append``); rejections promise nothing and go to
``msgs`` at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvraft.core.log import RaftLog
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
)


class Follower:
    """Handlers for the leader's messages; state is owned and documented by ``Raft``."""

    id: int
    term: int
    log: RaftLog
    msgs_after_append: list[Message]

    if TYPE_CHECKING:  # defined by Raft / Sender

        def _send(self, m: Message) -> None: ...
        def _set_conf(self, cs: ConfState) -> None: ...

    def _ack_after_append(self, to: int, index: int) -> None:
        """Queue a success AppendResponse (coalescing with a queued one to the same peer)."""
        q = self.msgs_after_append
        if q:
            last = q[-1]
            if (
                isinstance(last, AppendResponse)
                and last.dst == to
                and last.term == self.term
                and not last.reject
                and last.index <= index
            ):
                q.pop()
        q.append(AppendResponse(self.id, to, self.term, index))

    def _handle_append(self, m: AppendEntries) -> None:
        log = self.log
        if m.prev_index < log.committed:
            self._ack_after_append(m.src, log.committed)
            return
        last_new = log.maybe_append(m.prev_index, m.prev_term, m.commit, m.entries)
        if last_new is not None:
            self._ack_after_append(m.src, last_new)
            return
        hint_index, hint_term = log.find_conflict_by_term(
            min(m.prev_index, log.last_index()), m.prev_term
        )
        self._send(
            AppendResponse(self.id, m.src, self.term, m.prev_index, True, hint_index, hint_term)
        )

    def _handle_heartbeat(self, m: Heartbeat) -> None:
        self.log.commit_to(min(m.commit, self.log.last_index()))
        self._send(HeartbeatResponse(self.id, m.src, self.term, m.context))

    def _handle_snapshot(self, m: InstallSnapshot) -> None:
        meta = m.meta
        log = self.log
        if meta.index <= log.committed:
            self._ack_after_append(m.src, log.committed)
        elif log.match_term(meta.index, meta.term):
            log.commit_to(meta.index)
            self._ack_after_append(m.src, meta.index)
        else:
            log.restore(meta)
            self._set_conf(meta.conf_state)
            self._ack_after_append(m.src, meta.index)
