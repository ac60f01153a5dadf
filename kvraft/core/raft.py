"""Raft's state transitions: one object, driven by ticks, messages and local requests.

Theory of operation
-------------------
A node is a follower, pre-candidate, candidate or leader in a ``term``. Everything it
must tell the world is queued, never performed: ``msgs`` may leave at once,
``msgs_after_append`` only once the Ready that carries the current hard state and
entries is durable. ``RawNode`` packs both into Readys; the split is the whole
"persist before send" rule, so it lives here in one place:

- vote grants and append acks go to ``msgs_after_append`` (they promise durable state);
- so do a candidate's vote requests (not pre-vote): grants bind voters to the term and
  log they claim. Sent early, a candidate that crashed before persisting could restart in
  the old term with a shorter log, campaign for that term again and win with grants to
  its first claim (leader completeness broken; leading in a term not on its disk);
- everything else (pre-vote traffic, rejections, heartbeats and their answers, a leader's
  appends) goes to ``msgs``: it promises nothing durable (a term not yet on disk only
  makes its receiver step down); a leader's term is on disk before its first message
  (grants answer requests that left after it was; its own vote counts at ``advance``);
- the node's own vote and its own append ack are messages to itself in
  ``msgs_after_append``: ``RawNode.advance`` steps them back in, so a candidate counts
  its vote and a leader counts its log for commit only once they are durable.

Rules, beyond the Raft paper's Figure 2:

- Terms: a message of a higher term makes the node a follower of that term first,
  except (a) a vote request arriving while the node believes in a live leader (check
  quorum "leader stickiness": heard from a leader within ``election_ticks``) — it is
  ignored unless it comes from a leadership transfer — and (b) pre-vote traffic, which
  never changes term or vote. A message of a lower term is dropped; an AppendEntries or
  Heartbeat of a lower term is answered with our term so a stale leader steps down, and
  a pre-vote of a lower term is refused with our term.
- Elections: the timeout is drawn from [election_ticks, 2*election_ticks). With pre-vote
  a node first asks "would you vote for me in term+1?"; only a majority of yeses lets it
  raise its term, so a partitioned node cannot disrupt a healthy cluster on return.
  Nodes that are not voters, or have unapplied committed conf changes, never campaign.
- Leadership: a new leader appends an empty entry of its term. Commit advances only to
  an index that a quorum of voters holds AND whose entry is of the current term (Figure
  8). With check-quorum a leader that has not heard from a quorum within
  ``election_ticks`` steps down.
- Replication (see progress.py; the follower's side is follower.py): PROBE sends one
  AppendEntries at a time; REPLICATE streams within an inflight window; SNAPSHOT waits
  for the transport. Sends are batched: proposals and acks only mark followers dirty,
  and ``flush`` (called before each Ready) sends each follower at most what it needs, in
  messages bounded by count and bytes. A rejection carries a hint (the follower's
  largest index with a term <= the rejected prev term), so a divergent or lagging
  follower is found in O(terms) round trips, not O(entries).
- Snapshots: a follower whose next index is compacted gets InstallSnapshot. A follower
  (follower.py) ignores a snapshot at or below its commit index, fast-forwards its
  commit if its log already holds the snapshot's last entry, and otherwise drops its log
  (Figure 13).
- ReadIndex (readindex.py): answered only after the leader committed an entry of its
  term, and confirmed once a quorum of voters answered a heartbeat round sent after the
  request arrived. Every heartbeat broadcast is such a round (rounds.py), with an id in
  ``Heartbeat.context`` that the answer echoes.
- Leases: lease reads skip the round while a quorum of voters is known to have heard
  from us within the last ``lease_ticks`` ticks, counted from when the round they
  answered was SENT, never from when the answer arrived: an answer may arrive seconds
  late (queued in a transport), after the cluster has elected another leader. A voter
  that heard from us ignores vote requests for ``election_ticks`` of its own ticks
  (leader stickiness, election.py), so no other leader can be elected before our lease
  (``lease_ticks`` < ``election_ticks``) runs out, unless clocks drift apart by more
  than the difference. Never during a leadership transfer. Check-quorum step-down
  counts answers when they arrive (it only needs to hear that the others are alive).
- Leadership transfer: catch the target up, send TimeoutNow (target campaigns at once,
  without pre-vote, and voters skip leader stickiness); refuse proposals meanwhile;
  give up after ``election_ticks``.
- Leaving: a leader that applies its own removal or demotion steps down at once, with
  TimeoutNow to a voter that holds its whole log if there is one. If there is none, the
  remaining voters may need its vote (their membership, not yet applied, still counts
  it) and it refuses them (its log is longer). So a node that is not a voter, was a
  member, knows no live leader and refuses a vote for that reason campaigns itself as a
  *caretaker* (election.py): elected by the voters of its own membership, never counting
  itself, it refuses proposals (TransferInProgress), brings voters up to date, and hands
  over (commit index, TimeoutNow, step down) to the first voter that holds its whole log.
- Membership (membership.py): one change at a time, effective when applied. A new
  leader whose log, replayed from index 1, would not teach a joining node the membership
  (a cluster bootstrapped without log entries, or such entries overwritten before they
  committed) appends the missing ADD_VOTER / ADD_LEARNER entries after its no-op
  (membership_record.py; for members they change nothing). Node ids are never reused:
  REMOVE_NODE adds the id to ``ConfState.removed`` and adding it again is refused, so a
  node that comes back empty under an old id cannot replay an old membership (voters
  {1}, say) as node 1 and elect itself alone; it rejoins under a new id.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kvraft.core.config import Config
from kvraft.core.election import Elections
from kvraft.core.follower import Follower
from kvraft.core.log import RaftLog
from kvraft.core.membership import check_conf_change, next_conf_state
from kvraft.core.membership_record import missing_record
from kvraft.core.progress import Progress, ProgressState
from kvraft.core.quorum import JointConfig
from kvraft.core.readindex import ReadIndexQueue
from kvraft.core.replication import Sender
from kvraft.core.rounds import HeartbeatRounds
from kvraft.core.types import (
    NONE,
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    LogReader,
    Message,
    ReadState,
    RequestVote,
    Role,
    TimeoutNow,
    VoteResponse,
    encode_conf_change,
)
from kvraft.errors import (
    ConfChangeInProgress,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    TransferInProgress,
)

_LEADER_MSGS = (AppendEntries, Heartbeat, InstallSnapshot)


class Raft(Sender, Elections, Follower):
    """The transitions. Not thread-safe; driven by ``RawNode``."""

    def __init__(self, config: Config, store: LogReader, rng: random.Random) -> None:
        config.validate()
        hard_state, conf = store.initial_state()
        self.id = config.id  # Invariant: constant, > 0.
        self.cfg = config  # Invariant: validated.
        self.rng = rng  # Invariant: the only source of randomness.
        self.lease_ticks = config.effective_lease_ticks()  # Invariant: < election_ticks.
        self.log = RaftLog(store, config.applied)  # Invariant: owned by this object.
        self.term = hard_state.term  # Invariant: never decreases.
        self.vote = hard_state.vote  # Invariant: at most one vote per term.
        self.lead = NONE  # Invariant: the leader of `term` we know of, or NONE.
        self.role = Role.FOLLOWER  # Invariant: never LEARNER here (see RawNode.role).
        self.voters = JointConfig(conf.voters, conf.voters_outgoing)  # Current voters.
        self.learners = conf.learners  # Invariant: disjoint from voters.incoming.
        self.removed = conf.removed  # Ids removed for good; disjoint from voters, learners.
        self.progress: dict[int, Progress] = {}  # Leader only: one per member incl. self.
        self.votes: dict[int, bool] = {}  # (Pre-)candidate only: answers this campaign.
        self.msgs: list[Message] = []  # To send now.
        self.msgs_after_append: list[Message] = []  # To send once the next Ready is durable.
        self.read_states: list[ReadState] = []  # Confirmed reads not yet handed out.
        self.dropped_reads: list[int] = []  # Reads that will never be answered.
        self.reads = ReadIndexQueue()  # Leader only: pending ReadIndex requests.
        self.rounds = HeartbeatRounds(self.lease_ticks)  # Leader: heartbeat rounds sent.
        self.now = 0  # Invariant: number of ticks so far (the core's clock).
        self.restarted = hard_state.term > 0  # Was in a cluster before this start.
        # Has been a member itself, so its membership is a real one (election.py).
        self.was_member = self.id in conf.all_nodes() or self._log_names_me()
        self.election_elapsed = 0  # Ticks since the last reset of the election timer.
        self.heartbeat_elapsed = 0  # Leader: ticks since the last heartbeat broadcast.
        self.randomized_timeout = 0  # In [election_ticks, 2*election_ticks).
        self.pending_conf_index = 0  # Leader: index of the last conf change it appended.
        self.record_settled = False  # The log teaches the membership for good (no scans).
        self.committed_in_term = False  # Leader: an entry of `term` is committed.
        self.lead_transferee = NONE  # Leader: transfer target, NONE if no transfer.
        self.transfer_elapsed = 0  # Leader: ticks since the transfer started.
        self.timeout_now_sent = False  # Leader: a TimeoutNow left this term (no lease).
        self._bcast = False  # Leader: every follower may need an AppendEntries at flush.
        self._dirty: set[int] = set()  # Leader: followers that may need one at flush.
        self._commit_due = False  # Leader: flush tells followers the commit (lazy_commit).
        self._become_follower(self.term, NONE)

    # ================================================================= helpers
    def promotable(self) -> bool:
        return self.id in self.voters.ids()

    def conf_state(self) -> ConfState:
        return ConfState(
            voters=self.voters.incoming,
            learners=self.learners,
            voters_outgoing=self.voters.outgoing,
            removed=self.removed,
        )

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.dropped_reads.extend(self.reads.drop_all())
        self.rounds.forget()
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = self.rng.randrange(
            self.cfg.election_ticks, 2 * self.cfg.election_ticks
        )
        self.votes = {}
        # Vote requests still waiting for persistence belong to a campaign that is over.
        self.msgs_after_append = [
            m for m in self.msgs_after_append if not isinstance(m, RequestVote)
        ]
        self.progress = {}
        self.lead_transferee = NONE
        self.transfer_elapsed = 0
        self.timeout_now_sent = False
        self.committed_in_term = False
        self._bcast = False
        self._dirty.clear()
        self._commit_due = False

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.lead = lead

    def _become_pre_candidate(self) -> None:
        self._reset(self.term)
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        assert self.role is Role.CANDIDATE, "only a candidate becomes leader"
        self._reset(self.term)
        self.role = Role.LEADER
        self.lead = self.id
        last = self.log.last_index()
        for node in self.voters.ids() | self.learners | {self.id}:
            self._add_progress(node, last + 1)
        me = self.progress[self.id]
        me.match = self.log.persisted_index()
        me.become_replicate()
        self.pending_conf_index = last
        entries = [Entry(self.term, last + 1)]
        entries += self._membership_record(last + 2)
        if len(entries) > 1:
            self.pending_conf_index = entries[-1].index
        self._append(entries)
        if not self.promotable():
            self._aim_hand_over()  # a caretaker (election.py)

    def _membership_record(self, first: int) -> list[Entry]:
        """The entries (from index ``first``) that make replaying our log teach the
        membership, if it does not yet (see membership_record.py)."""
        if self.record_settled:
            return []
        changes, self.record_settled = missing_record(self.log, self.conf_state())
        return [
            Entry(self.term, first + k, EntryType.CONF_CHANGE, encode_conf_change(cc))
            for k, cc in enumerate(changes)
        ]

    def _add_progress(self, node: int, next_index: int) -> None:
        pr = Progress(next_index, self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes)
        pr.last_active = self.now
        self.progress[node] = pr

    def _append(self, entries: list[Entry]) -> None:
        """Leader: append to the log; our own ack follows once they are durable."""
        self.log.append(entries)
        self._ack_after_append(self.id, entries[-1].index)
        self._bcast = True

    # ================================================================= ticks
    def tick(self) -> None:
        self.now += 1
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self.election_elapsed += 1
            # A node that cannot campaign keeps counting, so its belief in a silent
            # leader expires (it answers vote requests again) instead of being renewed
            # at every timeout.
            if self.election_elapsed < self.randomized_timeout:
                return
            if self.promotable():
                self.election_elapsed = 0
                self.hup()
            elif self.role is not Role.FOLLOWER:
                self._become_follower(self.term, NONE)  # a caretaker campaign went nowhere

    def _tick_leader(self) -> None:
        if self.cfg.check_quorum and not self._quorum_active():
            self._become_follower(self.term, NONE)
            return
        if self.lead_transferee != NONE:
            self.transfer_elapsed += 1
            if self.transfer_elapsed >= self.cfg.election_ticks:
                self.lead_transferee = NONE
                if not self.promotable():
                    self._aim_hand_over()  # a caretaker tries again, maybe with another voter
        self.heartbeat_elapsed += 1
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()

    def _quorum_tick(self, value_of: Callable[[Progress], int]) -> int:
        """The latest tick ``t`` such that ``value_of`` is >= ``t`` for a quorum of
        voters (the leader itself counts as ``now``)."""
        now, me, progress = self.now, self.id, self.progress
        return self.voters.committed_index(
            lambda v: now if v == me else value_of(progress[v]) if v in progress else -(1 << 62)
        )

    def _quorum_active(self) -> bool:
        return self.now - self._quorum_tick(lambda p: p.last_active) < self.cfg.election_ticks

    def lease_valid(self) -> bool:
        """Leader: may reads be served without a heartbeat round right now? Only while a
        quorum of voters heard from us within ``lease_ticks`` (see the module docstring)."""
        return (
            self.role is Role.LEADER
            and self.cfg.check_quorum
            and self.committed_in_term
            and self.lead_transferee == NONE
            and not self.timeout_now_sent
            and self.now - self._quorum_tick(lambda p: p.heard_since) < self.lease_ticks
        )

    # ================================================================= step
    def step(self, m: Message) -> None:
        """Handle a message (from a peer, or from ourselves via RawNode.advance)."""
        if m.term > self.term:
            if isinstance(m, RequestVote):
                if not m.transfer and self._in_lease():
                    return
                if m.pre_vote:
                    self._handle_vote_request(m)
                    return
            if isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass  # an answer for the term we would campaign in
            elif isinstance(m, _LEADER_MSGS):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, NONE)
        elif m.term < self.term:
            if isinstance(m, (AppendEntries, Heartbeat)) and (
                self.cfg.check_quorum or self.cfg.pre_vote
            ):
                self._send(AppendResponse(self.id, m.src, self.term, 0, reject=True))
            elif isinstance(m, RequestVote) and m.pre_vote:
                self._send(VoteResponse(self.id, m.src, self.term, False, pre_vote=True))
            return
        match m:
            case RequestVote():
                self._handle_vote_request(m)
            case VoteResponse():
                self._handle_vote_response(m)
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                if self.role is Role.LEADER:
                    return  # two leaders in one term cannot happen; a forged message
                if self.role is not Role.FOLLOWER:
                    self._become_follower(self.term, m.src)
                self.lead = m.src
                self.election_elapsed = 0
                if isinstance(m, AppendEntries):
                    self._handle_append(m)
                elif isinstance(m, Heartbeat):
                    self._handle_heartbeat(m)
                else:
                    self._handle_snapshot(m)
            case TimeoutNow():
                if self.role is not Role.LEADER:
                    self.hup(transfer=True)
            case AppendResponse():
                if self.role is Role.LEADER and m.src in self.progress:
                    self._handle_append_response(m)
            case HeartbeatResponse():
                if self.role is Role.LEADER and m.src in self.progress:
                    self._handle_heartbeat_response(m)

    # ================================================================= leader side
    def _handle_append_response(self, m: AppendResponse) -> None:
        if m.index > self.log.last_index():
            return  # acks something this leader never sent: not from this term's log
        pr = self.progress[m.src]
        pr.last_active = self.now  # no lease: we cannot tell when what it answers left
        if m.reject:
            next_probe = m.hint_index
            if m.hint_term > 0:
                next_probe, _ = self.log.find_conflict_by_term(m.hint_index, m.hint_term)
            if pr.maybe_decrease_to(m.index, next_probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._dirty.add(m.src)
            return
        if not pr.maybe_update(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT:
            if pr.match + 1 >= self.log.first_index():
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.inflights.free_le(m.index)
        before = self.log.committed
        if self._maybe_commit():
            if not self.cfg.lazy_commit:
                self._bcast = True
            elif before < self.pending_conf_index <= self.log.committed:
                self.flush_commit()  # a membership change: every member learns it at once
        self._dirty.add(m.src)
        if pr.match == self.log.last_index() and (
            m.src == self.lead_transferee or (not self.promotable() and m.src in self.voters.ids())
        ):
            self._transfer_now(m.src)

    def _handle_heartbeat_response(self, m: HeartbeatResponse) -> None:
        pr = self.progress[m.src]
        pr.last_active = self.now
        if m.context > pr.acked_round and m.context <= self.rounds.last:
            pr.acked_round = m.context
            sent = self.rounds.sent_at(m.context)
            if sent is not None:
                pr.heard_since = sent
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first()
        if pr.match < self.log.last_index():
            self._send_append(m.src, force=True)
        if m.context and m.src in self.voters.ids():
            self._confirm_reads()

    def _maybe_commit(self) -> bool:
        progress = self.progress
        index = self.voters.committed_index(lambda v: progress[v].match if v in progress else 0)
        if index <= self.log.committed or self.log.term(index) != self.term:
            return False
        self.log.commit_to(index)
        if not self.committed_in_term:
            self.committed_in_term = True
            waiting, self.reads.waiting = self.reads.waiting, []
            for request_id in waiting:
                self._read_index_now(request_id, lease=False)
        return True

    def _send_timeout_now(self, to: int) -> None:
        self.timeout_now_sent = True
        self._send(TimeoutNow(self.id, to, self.term))

    def _transfer_now(self, to: int) -> None:
        """``to`` holds our whole log: send TimeoutNow (a caretaker also steps down)."""
        if self.promotable():
            self._send_timeout_now(to)
        else:
            self._hand_over(to)

    def _aim_hand_over(self) -> None:
        """Caretaker: aim at the voter with the longest matching log (proposals are
        refused meanwhile, naming it); any voter that catches up first gets it."""
        voters = [v for v in self.voters.ids() if v in self.progress]
        if voters:
            self.lead_transferee = max(voters, key=lambda v: (self.progress[v].match, -v))
            self.transfer_elapsed = 0

    def _hand_over(self, to: int) -> None:
        """A leader that is not a voter steps down: it first sends what it owes (the
        commit index), then TimeoutNow to ``to`` (NONE: nobody holds its whole log yet)."""
        self.flush()
        if to != NONE:
            self._send_timeout_now(to)
        self._become_follower(self.term, NONE)

    # ================================================================= local requests
    def _check_leader(self) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee != NONE or not self.promotable():
            raise TransferInProgress(
                self.lead_transferee,
                f"leadership is being transferred to node {self.lead_transferee}; retry there",
            )

    def propose(self, data: bytes) -> int:
        self._check_leader()
        entry = Entry(self.term, self.log.last_index() + 1, EntryType.NORMAL, data)
        if entry.size() > self.cfg.max_bytes_per_msg:
            raise ProposalDropped(
                f"proposal of {len(data)} bytes exceeds max_bytes_per_msg="
                f"{self.cfg.max_bytes_per_msg}"
            )
        self._append([entry])
        return entry.index

    def propose_conf_change(self, cc: ConfChange) -> int:
        self._check_leader()
        if self.pending_conf_index > self.log.applied:
            raise ConfChangeInProgress(
                f"conf change at index {self.pending_conf_index} not applied yet"
            )
        if not self.committed_in_term:
            raise ConfChangeInProgress("the new leader has not committed an entry of its term")
        check_conf_change(self.conf_state(), cc)
        data = encode_conf_change(cc)
        entry = Entry(self.term, self.log.last_index() + 1, EntryType.CONF_CHANGE, data)
        self._append([entry])
        self.pending_conf_index = entry.index
        return entry.index

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        cs = next_conf_state(self.conf_state(), cc)
        self._set_conf(cs)
        return cs

    def _set_conf(self, cs: ConfState) -> None:
        was_voter = self.promotable()
        self.voters = JointConfig(cs.voters, cs.voters_outgoing)
        self.learners = cs.learners
        self.removed = cs.removed
        self.was_member = self.was_member or self.id in cs.all_nodes()
        if self.role is not Role.LEADER:
            return
        members = cs.all_nodes() | {self.id}
        for node in list(self.progress):
            if node not in members:
                del self.progress[node]
        for node in members - self.progress.keys():
            self._add_progress(node, self.log.last_index() + 1)
            self._dirty.add(node)
        if was_voter and not self.promotable():
            self._step_down_removed()
            return
        if self.lead_transferee not in self.voters.ids() or self.promotable() != was_voter:
            self.lead_transferee = NONE
            if not self.promotable():
                self._aim_hand_over()
        if self._maybe_commit():
            self._bcast = True
        self._confirm_reads()

    def _step_down_removed(self) -> None:
        """A leader that removed or demoted itself steps down at once, handing over to a
        voter that holds its whole log if there is one. If there is none and the others
        need its vote, it takes over again later as a caretaker (election.py)."""
        last = self.log.last_index()
        ready = [v for v in sorted(self.voters.ids()) if self.progress[v].match == last]
        self._hand_over(ready[0] if ready else NONE)

    def read_index(self, request_id: int, *, lease: bool) -> None:
        if lease and not self.cfg.check_quorum:
            raise ValueError("lease reads require check_quorum=True")
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if not self.committed_in_term:
            self.reads.waiting.append(request_id)
            return
        self._read_index_now(request_id, lease=lease)

    def _read_index_now(self, request_id: int, *, lease: bool) -> None:
        if self.voters.is_singleton(self.id) or (lease and self.lease_valid()):
            self.read_states.append(ReadState(request_id, self.log.committed))
        else:
            self.reads.add(request_id)

    def transfer_leadership(self, to: int) -> None:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if to not in self.voters.ids():
            raise InvalidConfChange(f"node {to} is not a voter; it cannot become leader")
        if to == self.id or to == self.lead_transferee:
            return
        self.lead_transferee = to
        self.transfer_elapsed = 0
        if self.progress[to].match == self.log.last_index():
            self._transfer_now(to)
        else:
            self._dirty.add(to)

    def report_unreachable(self, node: int) -> None:
        pr = self.progress.get(node) if self.role is Role.LEADER else None
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, node: int, ok: bool) -> None:
        pr = self.progress.get(node) if self.role is Role.LEADER else None
        if pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        pr.probe_sent = True  # wait for the follower's answer (or a heartbeat) first
