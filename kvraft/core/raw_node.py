"""RawNode: the public face of the core — inputs in, ``Ready`` batches out.

Protocol (one Ready outstanding at a time)::

    rd = node.ready()          # only if node.has_ready()
    1. persist rd.snapshot, rd.entries, rd.hard_state in ONE durable write
    2. send rd.persisted_messages (rd.messages may go before step 1)
    3. apply rd.committed_entries (calling apply_conf_change for CONF_CHANGE entries),
       serve rd.read_states, fail rd.dropped_reads
    4. node.advance(rd)

Between ``ready()`` and ``advance()`` the caller may keep calling every other method;
the next ``ready()`` carries only what was not handed out yet. Entries handed out count
as durable, and committed entries as applied, only at ``advance``.
"""

from __future__ import annotations

import random

from kvraft.core.config import Config
from kvraft.core.raft import Raft
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfState,
    HardState,
    InstallSnapshot,
    LogReader,
    Message,
    Ready,
    Role,
    SoftState,
)


def _well_formed(m: Message, me: int) -> bool:
    """Structural checks on a peer message; a malformed one is dropped, never raised."""
    if m.dst != me or m.src == me or m.src <= 0 or m.term < 0:
        return False
    if isinstance(m, AppendEntries):
        if m.prev_index < 0 or m.prev_term < 0 or m.commit < 0 or m.prev_term > m.term:
            return False
        index, term = m.prev_index, m.prev_term
        for e in m.entries:
            if e.index != index + 1 or e.term < term or e.term > m.term:
                return False
            index, term = e.index, e.term
        return True
    if isinstance(m, AppendResponse):
        return m.index >= 0 and m.hint_index >= 0 and m.hint_term >= 0
    if isinstance(m, InstallSnapshot):
        return 0 < m.meta.index and 0 < m.meta.term <= m.term
    return True


class RawNode:
    """One Raft node's core. See the module docstring for the Ready protocol."""

    def __init__(self, config: Config, log: LogReader, rng: random.Random) -> None:
        self._raft = Raft(config, log, rng)  # Invariant: the only state of this node.
        self._prev_hard = self._hard_state()  # Invariant: last hard state handed out.
        self._prev_soft = self._soft_state()  # Invariant: last soft state handed out.
        self._outstanding: Ready | None = None  # The Ready handed out, not yet advanced.
        self._self_msgs: list[Message] = []  # Our own vote/ack, stepped in at advance.

    # ------------------------------------------------------------------ properties
    @property
    def id(self) -> int:
        return self._raft.id

    @property
    def term(self) -> int:
        return self._raft.term

    @property
    def vote(self) -> int:
        return self._raft.vote

    @property
    def leader(self) -> int:
        return self._raft.lead

    @property
    def role(self) -> Role:
        r = self._raft
        if r.id in r.learners and r.role is Role.FOLLOWER:
            return Role.LEARNER
        return r.role

    @property
    def commit(self) -> int:
        return self._raft.log.committed

    @property
    def applied(self) -> int:
        return self._raft.log.applied

    @property
    def conf_state(self) -> ConfState:
        return self._raft.conf_state()

    @property
    def last_index(self) -> int:
        return self._raft.log.last_index()

    def _hard_state(self) -> HardState:
        r = self._raft
        return HardState(r.term, r.vote, r.log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(self._raft.lead, self.role, self._raft.term)

    # ------------------------------------------------------------------ inputs
    def tick(self) -> None:
        self._raft.tick()

    def step(self, msg: Message) -> None:
        """Handle a peer message; malformed, stale or misaddressed ones are dropped."""
        if _well_formed(msg, self._raft.id):
            self._raft.step(msg)

    def campaign(self) -> None:
        """Start an election now (pre-vote first when enabled)."""
        self._raft.hup()

    def propose(self, data: bytes) -> int:
        """Append ``data`` as a new entry; returns its index. Raises NotLeader,
        TransferInProgress (its ``leader_id`` is the transfer target), ProposalDropped."""
        return self._raft.propose(data)

    def propose_conf_change(self, cc: ConfChange) -> int:
        """Raises NotLeader, TransferInProgress, ConfChangeInProgress, InvalidConfChange."""
        return self._raft.propose_conf_change(cc)

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Called by the application when it applies a committed CONF_CHANGE entry."""
        return self._raft.apply_conf_change(cc)

    def read_index(self, request_id: int, *, lease: bool = False) -> None:
        """Ask for a read index; the answer is a ReadState (or a dropped id) in a later
        Ready. Raises NotLeader; ValueError for ``lease=True`` without check_quorum."""
        self._raft.read_index(request_id, lease=lease)

    def transfer_leadership(self, to: int) -> None:
        """Raises NotLeader, or InvalidConfChange if ``to`` is not a voter."""
        self._raft.transfer_leadership(to)

    def report_unreachable(self, node_id: int) -> None:
        self._raft.report_unreachable(node_id)

    def flush_commit(self) -> None:
        """Leader (``lazy_commit``): tell followers that lack it the commit index, in the
        next Ready. A no-op on other nodes and when every follower has it."""
        self._raft.flush_commit()

    def commit_unsent(self, upto: int | None = None) -> bool:
        """Leader: is there a follower that ``flush_commit`` would tell a newer commit
        index (with ``upto``: one that lacks even commit index ``upto``)? The runtime's
        cue to call it after a short delay."""
        return self._raft.commit_unsent(upto)

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self._raft.report_snapshot(node_id, ok)

    # ------------------------------------------------------------------ Ready
    def has_ready(self) -> bool:
        r = self._raft
        r.flush()
        return bool(
            r.msgs
            or r.msgs_after_append
            or r.read_states
            or r.dropped_reads
            or r.log.has_unhanded()
            or r.log.has_committed_to_apply()
            or self._hard_state() != self._prev_hard
            or self._soft_state() != self._prev_soft
        )

    def ready(self) -> Ready:
        """Hand out everything pending. Raises RuntimeError if the previous Ready has not
        been advanced yet."""
        if self._outstanding is not None:
            raise RuntimeError("ready() called again before advance() of the previous Ready")
        r = self._raft
        r.flush()
        hard = self._hard_state()
        soft = self._soft_state()
        after, r.msgs_after_append = r.msgs_after_append, []
        me = r.id
        rd = Ready(
            hard_state=hard if hard != self._prev_hard else None,
            snapshot=r.log.take_snapshot(),
            entries=r.log.take_unstable(),
            messages=tuple(r.msgs),
            persisted_messages=tuple(m for m in after if m.dst != me),
            committed_entries=r.log.take_committed(r.cfg.max_committed_bytes_per_ready),
            read_states=tuple(r.read_states),
            dropped_reads=tuple(r.dropped_reads),
            soft_state=soft if soft != self._prev_soft else None,
        )
        r.msgs = []
        r.read_states = []
        r.dropped_reads = []
        self._prev_hard = hard
        self._prev_soft = soft
        self._self_msgs = [m for m in after if m.dst == me]
        self._outstanding = rd
        return rd

    def advance(self, ready: Ready) -> None:
        """``ready`` has been persisted, sent and applied."""
        if ready is not self._outstanding:
            raise RuntimeError("advance() must be given the Ready returned by the last ready()")
        self._outstanding = None
        log = self._raft.log
        if ready.snapshot is not None:
            log.stable_snapshot_to(ready.snapshot.index)
            log.applied_to(ready.snapshot.index)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
        if ready.committed_entries:
            log.applied_to(ready.committed_entries[-1].index)
        self_msgs, self._self_msgs = self._self_msgs, []
        for m in self_msgs:
            self._raft.step(m)

    def status(self) -> dict[str, object]:
        r = self._raft
        progress = {
            node: {"match": pr.match, "next": pr.next, "state": pr.state.value}
            for node, pr in sorted(r.progress.items())
        }
        return {
            "id": r.id,
            "term": r.term,
            "vote": r.vote,
            "commit": r.log.committed,
            "applied": r.log.applied,
            "leader": r.lead,
            "role": self.role.name.lower(),
            "progress": progress,
        }
