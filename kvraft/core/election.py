"""Elections: campaigning (with pre-vote), granting votes, counting them.

A mixin of ``Raft`` (raft.py states the rules in its docstring; this holds the election
half of them). State is owned and documented by ``Raft``; the role transitions
(``_become_*``) live there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvraft.core.config import Config
from kvraft.core.log import RaftLog
from kvraft.core.quorum import JointConfig, VoteResult
from kvraft.core.types import (
    NONE,
    EntryType,
    Message,
    RequestVote,
    Role,
    VoteResponse,
    decode_conf_change,
)


class Elections:
    """Campaigns and votes; state is owned and documented by ``Raft``."""

    id: int
    term: int
    vote: int
    lead: int
    role: Role
    cfg: Config
    log: RaftLog
    voters: JointConfig
    votes: dict[int, bool]
    msgs: list[Message]
    msgs_after_append: list[Message]
    now: int
    restarted: bool
    election_elapsed: int
    randomized_timeout: int
    was_member: bool

    if TYPE_CHECKING:  # defined by Raft / Sender

        def promotable(self) -> bool: ...
        def _send(self, m: Message) -> None: ...
        def _become_follower(self, term: int, lead: int) -> None: ...
        def _become_pre_candidate(self) -> None: ...
        def _become_candidate(self) -> None: ...
        def _become_leader(self) -> None: ...

    def _in_lease(self) -> bool:
        """Do we believe in a live leader (check-quorum leader stickiness)? A node that
        restarted counts as having heard from one when it started: before the crash it
        may have acknowledged a leader whose lease (lease reads) still runs."""
        if not self.cfg.check_quorum:
            return False
        if self.lead == NONE:
            return self.restarted and self.now < self.cfg.election_ticks
        return self.role is Role.LEADER or self.election_elapsed < self.cfg.election_ticks

    def hup(self, *, transfer: bool = False) -> None:
        """Start a campaign (pre-vote first if enabled, unless for a transfer)."""
        if self.role is Role.LEADER or not self.promotable():
            return
        if self._has_unapplied_conf_change():
            return
        if self.cfg.pre_vote and not transfer:
            self._campaign(pre_vote=True, transfer=False)
        else:
            self._campaign(pre_vote=False, transfer=transfer)

    def _has_unapplied_conf_change(self) -> bool:
        # Entries folded into a snapshot (taken by the application, possibly before it
        # called advance, or received and not yet durable) count as applied.
        lo = max(self.log.applied, self.log.first_index() - 1) + 1
        hi = self.log.committed + 1
        if lo >= hi:
            return False
        ents = self.log.entries(lo, hi)
        return any(e.type is EntryType.CONF_CHANGE for e in ents)

    def _campaign(self, *, pre_vote: bool, transfer: bool) -> None:
        if pre_vote:
            self._become_pre_candidate()
            vote_term = self.term + 1
            self.votes[self.id] = True
        else:
            self._become_candidate()
            vote_term = self.term
            self.msgs_after_append.append(VoteResponse(self.id, self.id, self.term, True))
        if pre_vote and self._tally() is VoteResult.WON:
            self._campaign(pre_vote=False, transfer=False)
            return
        # A real vote request leaves only once our term, self-vote and the log it claims
        # are durable: a grant binds the voter to a log and a term we must still hold if
        # we crash and campaign again (raft.py). A pre-vote binds no one; it leaves now.
        queue = self.msgs if pre_vote else self.msgs_after_append
        last_index = self.log.last_index()
        last_term = self.log.term(last_index)
        for v in sorted(self.voters.ids()):
            if v != self.id:
                queue.append(
                    RequestVote(self.id, v, vote_term, last_index, last_term, pre_vote, transfer)
                )

    def _tally(self) -> VoteResult:
        return self.voters.vote_result(self.votes)

    def _handle_vote_request(self, m: RequestVote) -> None:
        can_vote = (
            self.vote == m.src
            or (self.vote == NONE and self.lead == NONE)
            or (m.pre_vote and m.term > self.term)
        )
        up_to_date = self.log.is_up_to_date(m.last_index, m.last_term)
        if can_vote and up_to_date:
            if m.pre_vote:
                self._send(VoteResponse(self.id, m.src, m.term, True, pre_vote=True))
            else:
                self.election_elapsed = 0
                self.vote = m.src
                self.msgs_after_append.append(VoteResponse(self.id, m.src, self.term, True))
        else:
            self._send(VoteResponse(self.id, m.src, self.term, False, pre_vote=m.pre_vote))
            if not up_to_date:
                self._maybe_take_over()

    def _maybe_take_over(self) -> None:
        """We refused a vote because the candidate's log is behind ours. A voter would
        win an election of its own in time; a node that is no longer a voter (it removed
        or demoted itself) never campaigns, so if the candidate needs our vote (its
        membership still counts us) no one could ever win. Such a node campaigns as a
        *caretaker*: it asks the voters of its own membership, never counts itself, and
        once elected only brings a voter up to date and hands leadership over (raft.py).

        Only a node that was a member itself, so that its membership is a real one (a
        joining node replaying a log's membership record holds passing subsets of it),
        and only while it knows no live leader."""
        if (
            self.role is Role.FOLLOWER
            and not self.promotable()
            and self.was_member
            and self.voters.ids()
            and (self.lead == NONE or self.election_elapsed >= self.cfg.election_ticks)
            and not self._has_unapplied_conf_change()
        ):
            self._campaign(pre_vote=self.cfg.pre_vote, transfer=False)

    def _log_names_me(self) -> bool:
        """Does an applied conf change in our log name us? (At start, for a node outside
        its own membership: if one does, it was a member and then removed.)"""
        lo, hi = self.log.first_index(), self.log.applied + 1
        while lo < hi:
            batch = self.log.entries(lo, hi, 1 << 20)
            for e in batch:
                if e.type is EntryType.CONF_CHANGE:
                    try:
                        if decode_conf_change(e.data).node_id == self.id:
                            return True
                    except ValueError:
                        continue
            lo = batch[-1].index + 1
        return False

    def _handle_vote_response(self, m: VoteResponse) -> None:
        expected = Role.PRE_CANDIDATE if m.pre_vote else Role.CANDIDATE
        if self.role is not expected:
            return
        if m.pre_vote and m.granted and m.term != self.term + 1:
            return  # a grant left over from an earlier pre-campaign
        self.votes[m.src] = m.granted
        result = self._tally()
        if result is VoteResult.WON:
            if m.pre_vote:
                self._campaign(pre_vote=False, transfer=False)
            else:
                self._become_leader()
        elif result is VoteResult.LOST:
            self._become_follower(self.term, NONE)
