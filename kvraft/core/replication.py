"""The leader's sending side: AppendEntries batches, snapshots and heartbeats.

A mixin of ``Raft`` (raft.py holds the rules; this holds the mechanics of turning the
followers' Progress into messages). Sends are lazy: transitions mark followers dirty
(``_dirty``) or all of them (``_bcast``), and ``flush`` — called before every Ready —
sends each follower what its Progress state allows, so a burst of proposals becomes one
AppendEntries per follower, bounded by ``max_entries_per_msg`` and ``max_bytes_per_msg``.

A newer commit index is sent on its own (an empty AppendEntries) at once, or, with
``lazy_commit``, only when ``flush_commit`` asks for it; until then it rides on the next
AppendEntries with entries and on heartbeats.
"""

from __future__ import annotations

from kvraft.core.config import Config
from kvraft.core.log import RaftLog
from kvraft.core.progress import Progress, ProgressState
from kvraft.core.quorum import JointConfig
from kvraft.core.readindex import ReadIndexQueue
from kvraft.core.rounds import HeartbeatRounds
from kvraft.core.types import (
    AppendEntries,
    Heartbeat,
    InstallSnapshot,
    Message,
    ReadState,
    Role,
)
from kvraft.errors import Compacted


class Sender:
    """Leader-side message production; state is owned and documented by ``Raft``."""

    id: int
    term: int
    now: int
    role: Role
    cfg: Config
    log: RaftLog
    voters: JointConfig
    progress: dict[int, Progress]
    msgs: list[Message]
    reads: ReadIndexQueue
    rounds: HeartbeatRounds
    read_states: list[ReadState]
    _bcast: bool
    _dirty: set[int]
    _commit_due: bool

    def _send(self, m: Message) -> None:
        self.msgs.append(m)

    def _bcast_heartbeat(self) -> None:
        """Send a heartbeat round (its id in ``context``) to every follower; it carries
        the ReadIndex requests that arrived since the previous round."""
        round_id = self.rounds.start(self.now)
        commit = self.log.committed
        self.reads.send_open(round_id, commit)
        for node, pr in self.progress.items():
            if node != self.id:
                self._send(Heartbeat(self.id, node, self.term, min(pr.match, commit), round_id))
        self._confirm_reads()  # a quorum of one (a one-voter half of a joint config)

    def _confirm_reads(self) -> None:
        """Confirm the ReadIndex batches whose round (or a later one) a quorum of voters
        has answered; the leader counts as having answered every round it sent."""
        if not self.reads.sent:
            return
        me, progress, newest = self.id, self.progress, self.rounds.last
        quorum_round = self.voters.committed_index(
            lambda v: newest if v == me else progress[v].acked_round if v in progress else 0
        )
        self.read_states.extend(self.reads.confirm(quorum_round))

    def flush(self) -> None:
        """Send what proposals, acks and reads since the last flush call for."""
        if self.role is not Role.LEADER:
            return
        if self.reads.open:
            self._bcast_heartbeat()
        targets = list(self.progress) if self._bcast else sorted(self._dirty)
        self._bcast = False
        self._dirty.clear()
        for node in targets:
            if node != self.id and node in self.progress:
                self._send_append(node)
        self._commit_due = False

    def flush_commit(self) -> None:
        """Leader: at the next flush, send the commit index to every follower that has
        not been sent it (lazy_commit holds it back until then)."""
        if self.role is Role.LEADER:
            self._commit_due = True
            self._bcast = True

    def commit_unsent(self, upto: int | None = None) -> bool:
        """Leader: could a follower be sent a newer commit index than it was sent (and
        may it be sent an AppendEntries now)? With ``upto``: one that was not sent even
        the commit index ``upto`` (an older one it may still lack)."""
        if self.role is not Role.LEADER:
            return False
        commit = self.log.committed if upto is None else min(upto, self.log.committed)
        return any(
            node != self.id and pr.sent_commit < min(commit, pr.next - 1) and not pr.is_paused()
            for node, pr in self.progress.items()
        )

    def _send_append(self, to: int, *, force: bool = False) -> None:
        """Send ``to`` what its state allows: in REPLICATE, all new entries within the
        inflight window; in PROBE, one message. An empty AppendEntries goes only if
        ``force`` or to tell the follower a newer commit index (with lazy_commit: only
        when ``flush_commit`` asked for it)."""
        pr = self.progress[to]
        if pr.is_paused():
            return
        bump = (self._commit_due or not self.cfg.lazy_commit) and pr.sent_commit < min(
            self.log.committed, pr.next - 1
        )
        if not self._send_one_append(to, pr, force or bump):
            return
        while pr.state is ProgressState.REPLICATE and not pr.is_paused():
            if not self._send_one_append(to, pr, False):
                return

    def _send_one_append(self, to: int, pr: Progress, send_if_empty: bool) -> bool:
        log = self.log
        prev_index = pr.next - 1
        last = log.last_index()
        try:
            prev_term = log.term(prev_index)
            if pr.next <= last:
                hi = min(last + 1, pr.next + self.cfg.max_entries_per_msg)
                ents = log.entries(pr.next, hi, self.cfg.max_bytes_per_msg)
            else:
                ents = []
        except Compacted:
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        commit = log.committed
        msg = AppendEntries(self.id, to, self.term, prev_index, prev_term, tuple(ents), commit)
        self._send(msg)
        if ents:
            pr.on_entries_sent(ents[-1].index, len(ents), sum(e.size() for e in ents))
        else:
            pr.on_entries_sent(prev_index, 0, 0)
        pr.sent_commit = max(pr.sent_commit, commit)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        meta = self.log.snapshot_meta()
        if meta.index == 0:
            return False
        self._send(InstallSnapshot(self.id, to, self.term, meta))
        pr.become_snapshot(meta.index)
        return True
