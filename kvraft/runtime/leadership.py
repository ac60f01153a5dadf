"""The driver's leadership bookkeeping: what follows from the core's role and term.

- **Soft state** (``observe``): a new term, or a role other than leader, forgets the
  quorum's ack times and whether an entry of the term applied; elections and leader
  changes are logged, and a new known leader is counted (``DriverStats.leader_changes``).
- **Lost leadership** (``check``, after every Ready): a node that is not the leader fails
  its pending proposals with OutcomeUnknown (they may still commit under the next
  leader) and its unanswered reads with NotLeader; a leader fails the proposals of
  other terms with OutcomeUnknown.
- **A leader's freshness** (freshness.py): once an entry of its term has applied, a
  leader's commit index is current as of the time a quorum of voters last acknowledged
  it (``acked``); a single voter is its own quorum at every tick (``ticked``).

Used only by the driver task (driver.py); times come from the driver's clock.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from kvraft.core.types import AppendResponse, HeartbeatResponse, Role, SoftState
from kvraft.errors import NotLeader
from kvraft.runtime.base import DriverStats, RaftNode
from kvraft.runtime.errors import OutcomeUnknown
from kvraft.runtime.freshness import Freshness, quorum_time
from kvraft.runtime.waiters import ProposalTracker, ReadWaiters


class Leadership:
    """Leader-side state of one driver that the core's soft state invalidates."""

    def __init__(
        self,
        node: RaftNode,
        proposals: ProposalTracker,
        reads: ReadWaiters,
        freshness: Freshness,
        stats: DriverStats,
        clock: Callable[[], float],
    ) -> None:
        self._node = node  # the driver's core; read only
        self._proposals = proposals  # failed here when leadership is lost
        self._reads = reads  # unanswered ones failed here when leadership is lost
        self._freshness = freshness  # told of a leader's quorum-confirmed commit index
        self._stats = stats  # the driver's counters (leader_changes)
        self._clock = clock
        self.acks: dict[int, float] = {}  # leader only: peer -> last ack time this term
        self.term_committed = False  # leader only: an entry of the current term applied
        self._log_ = structlog.get_logger("kvraft.runtime").bind(node_id=node.id)

    def observe(self, old_leader: int, old_role: Role, old_term: int, ss: SoftState) -> None:
        """The core's soft state changed from (old_leader, old_role, old_term) to ``ss``."""
        if ss.term != old_term or ss.role != Role.LEADER:
            self.acks.clear()
            self.term_committed = False
        if ss.role != old_role and ss.role in (Role.PRE_CANDIDATE, Role.CANDIDATE):
            self._log_.info("election started", term=ss.term, role=ss.role.name)
        if ss.leader != old_leader and ss.leader:
            self._stats.leader_changes += 1
        if ss.leader != old_leader or (ss.role == Role.LEADER) != (old_role == Role.LEADER):
            if ss.role == Role.LEADER:
                self._log_.info("became leader", term=ss.term)
            else:
                self._log_.info("leader changed", term=ss.term, leader=ss.leader or None)

    def check(self) -> None:
        """After a Ready: fail what the core's current role can no longer answer."""
        node = self._node
        if node.role != Role.LEADER:
            lost = self._proposals.fail_all(outcome_unknown)
            leader = node.leader
            self._reads.fail_unanswered(lambda: NotLeader(leader, not_leader_msg(leader)))
            if lost:
                self._log_.info("leadership lost: proposals outcome unknown", proposals=lost)
        else:
            self._proposals.fail_terms_other_than(node.term, outcome_unknown)

    def applied(self, term: int) -> None:
        """An entry of ``term`` was applied."""
        if term == self._node.term and self._node.role == Role.LEADER:
            self.term_committed = True

    def acked(self, m: AppendResponse | HeartbeatResponse, now: float) -> None:
        """A peer answered this leader at ``now`` (the core has stepped ``m``)."""
        node = self._node
        if m.term == node.term and node.role == Role.LEADER and self.term_committed:
            self.acks[m.src] = now
            qt = quorum_time(node.id, node.conf_state.voters, self.acks, now)
            if qt is not None:
                self._freshness.heard(node.commit, qt)

    def ticked(self) -> None:
        """The core ticked: a single voter confirms its own commit index."""
        node = self._node
        if self.term_committed and node.conf_state.voters == {node.id}:
            self._freshness.heard(node.commit, self._clock())


def outcome_unknown() -> Exception:
    return OutcomeUnknown(
        "leadership was lost before the write applied: the outcome is unknown; "
        "retry with the same session sequence number"
    )


def not_leader_msg(leader: int) -> str:
    return f"not leader (known leader: {leader or 'none'})"
