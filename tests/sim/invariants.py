"""Raft's safety properties as incremental checkers fed by the simulator.

Each checker holds the history it needs (never the live nodes) and raises
:class:`SafetyViolation` the moment an observation contradicts Raft. The cluster feeds
them after every step (roles, terms, commits), on every durable write (log entries, hard
state), on every apply, and on every message that actually leaves a node. Checking at
those points is the same as checking the whole state after every step, at a cost that
does not grow with the log.

Properties (Raft paper §5.2-5.4, Figure 3), and how each is observed:
- Election safety: at most one leader per term. A node seen in the LEADER role, or seen
  sending AppendEntries / Heartbeat / InstallSnapshot / TimeoutNow, leads that term.
- Log matching: two logs holding an entry with the same index and term hold the same
  entry and the same log before it. Kept as a registry ``(index, term) -> (prev_term,
  type, data)`` shared by all nodes: every entry ever written anywhere must agree with
  it; by induction on the index this is log matching. Terms in one log never decrease.
- Leader completeness: an entry committed while some node was in term t is in the log of
  every leader of a term > t.
- State machine safety: the sequences of applied entries are prefixes of one history.
- Monotonicity: term and commit never decrease, and a vote never changes within a term,
  for each incarnation of a node and for its durable hard state across crashes.
- Votes: a node never votes for two candidates in a term, across crashes (votes seen as
  grants sent on the wire and as votes written to its disk).
- Persist before send: a message that leaves a node never promises state the node has
  not made durable (a granted vote; an acknowledged log index; a leader's term).
- Linearizable reads: a ReadIndex answer is >= every commit index observed anywhere
  before the read was issued, and each read is answered or dropped at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryType,
    HardState,
    Heartbeat,
    InstallSnapshot,
    Message,
    RequestVote,
    TimeoutNow,
    VoteResponse,
)


class SafetyViolation(AssertionError):
    """A Raft safety property was broken: the simulator found a bug (or a checker's)."""


# ============================================================================ election safety
@dataclass(slots=True)
class ElectionSafety:
    leaders: dict[int, int] = field(default_factory=dict)
    """term -> the one node ever seen leading it."""

    def observe(self, term: int, node: int, how: str) -> None:
        prev = self.leaders.setdefault(term, node)
        if prev != node:
            raise SafetyViolation(
                f"election safety: two leaders in term {term}: {prev} and {node} ({how})"
            )

    def observe_sent(self, msg: Message) -> None:
        if isinstance(msg, AppendEntries | Heartbeat | InstallSnapshot | TimeoutNow):
            self.observe(msg.term, msg.src, f"{type(msg).__name__} sent to {msg.dst}")


# ============================================================================ log matching
@dataclass(slots=True)
class LogMatching:
    registry: dict[tuple[int, int], tuple[int, EntryType, bytes]] = field(default_factory=dict)
    """(index, term) -> (term of index-1, type, data) as first seen in any log."""

    def check_entries(self, node: int, prev_term: int, entries: Sequence[Entry]) -> None:
        """``entries`` are contiguous log entries of ``node`` whose predecessor (the entry
        before entries[0], or the snapshot it starts after) has term ``prev_term``."""
        prev_index = entries[0].index - 1 if entries else 0
        for e in entries:
            if e.index != prev_index + 1:
                raise SafetyViolation(
                    f"log of node {node} is not contiguous: {prev_index} then {e.index}"
                )
            if e.term < prev_term:
                raise SafetyViolation(
                    f"log of node {node}: term goes back at index {e.index} "
                    f"({prev_term} -> {e.term})"
                )
            rec = (prev_term, e.type, e.data)
            old = self.registry.setdefault((e.index, e.term), rec)
            if old != rec:
                raise SafetyViolation(
                    f"log matching: node {node} holds entry (index {e.index}, term {e.term})"
                    f" = {rec!r} but another log holds {old!r}"
                )
            prev_index, prev_term = e.index, e.term


# ============================================================================ leader completeness
@dataclass(slots=True)
class LeaderCompleteness:
    """Commit indexes are observed on the running cores (``observe_commit``); the terms of
    committed entries only where the simulator sees a node's log exactly, i.e. right after
    the node handed out all its unstable entries in a Ready (``record_committed``)."""

    committed_terms: dict[int, int] = field(default_factory=dict)
    """index -> term of the entry committed there (as seen in a committing node's log)."""
    by_term: dict[int, int] = field(default_factory=dict)
    """term t -> highest index seen committed by a node while in term t."""
    max_commit: int = 0
    """Highest commit index ever observed on any node."""

    def observe_commit(self, node_term: int, commit: int) -> None:
        """A node in term ``node_term`` has commit index ``commit``."""
        if commit > self.by_term.get(node_term, 0):
            self.by_term[node_term] = commit
        self.max_commit = max(self.max_commit, commit)

    def record_committed(
        self, node: int, lo: int, hi: int, term_at: Callable[[int], int | None]
    ) -> None:
        """Entries (lo, hi] of ``node``'s log are committed; ``term_at`` is exact."""
        for i in range(lo + 1, hi + 1):
            t = term_at(i)
            if t is None:
                continue
            prev = self.committed_terms.setdefault(i, t)
            if prev != t:
                raise SafetyViolation(
                    f"commit: node {node} committed index {i} with term {t}, "
                    f"another node committed term {prev} there"
                )

    def required(self, term: int) -> int:
        """Highest index seen committed by a node in a term before ``term``."""
        return max((i for t, i in self.by_term.items() if t < term), default=0)

    def check_leader_index(self, node: int, term: int, last_index: int) -> None:
        """``node`` leads ``term`` and its (in-memory) log ends at ``last_index``."""
        need = self.required(term)
        if last_index < need:
            raise SafetyViolation(
                f"leader completeness: leader {node} of term {term} has last index "
                f"{last_index} but index {need} was committed in an earlier term"
            )

    def check_leader_log(self, node: int, term: int, term_at: Callable[[int], int | None]) -> None:
        """``node`` leads ``term``; ``term_at`` answers its log exactly (None: compacted).
        By log matching, agreeing at the highest required index means agreeing below."""
        i = self.required(term)
        while i > 0 and i not in self.committed_terms:
            i -= 1
        if i == 0:
            return
        have, want = term_at(i), self.committed_terms[i]
        if have is not None and have != want:
            raise SafetyViolation(
                f"leader completeness: leader {node} of term {term} holds term {have} at "
                f"index {i}, committed earlier with term {want}"
            )


# ============================================================================ state machine safety
@dataclass(slots=True)
class StateMachineSafety:
    history: list[Entry] = field(default_factory=list)
    """The one applied sequence: history[i-1] is the entry applied at index i anywhere."""

    def _agree(self, node: int, e: Entry) -> None:
        if e.index <= len(self.history):
            if self.history[e.index - 1] != e:
                raise SafetyViolation(
                    f"state machine safety: node {node} applied {e!r} at index {e.index}, "
                    f"another node applied {self.history[e.index - 1]!r}"
                )
        elif e.index == len(self.history) + 1:
            self.history.append(e)
        else:  # pragma: no cover - guarded by the contiguity checks of the callers
            raise SafetyViolation(f"node {node} applied index {e.index} beyond the history")

    def observe_apply(self, node: int, applied_before: int, e: Entry) -> None:
        if e.index != applied_before + 1:
            raise SafetyViolation(
                f"node {node} applied index {e.index} right after index {applied_before}"
            )
        self._agree(node, e)

    def observe_restore(self, node: int, applied_before: int, entries: Sequence[Entry]) -> None:
        """``node`` replaced its state with a snapshot holding ``entries`` (from index 1)."""
        if len(entries) < applied_before:
            raise SafetyViolation(
                f"node {node} restored a snapshot at index {len(entries)} "
                f"below its applied index {applied_before}"
            )
        for i, e in enumerate(entries, start=1):
            if e.index != i:
                raise SafetyViolation(f"snapshot restored on node {node} has a gap at {i}")
            self._agree(node, e)


# ============================================================================ monotonicity
@dataclass(slots=True)
class Monotonicity:
    live: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    """node -> (incarnation, term, vote, commit) last observed on the running core."""
    durable: dict[int, HardState] = field(default_factory=dict)
    """node -> last hard state observed on its disk."""

    @staticmethod
    def _step(what: str, node: int, old: HardState, new: HardState) -> None:
        if new.term < old.term:
            raise SafetyViolation(f"{what} term of node {node} went back {old.term}->{new.term}")
        if new.term == old.term and old.vote and new.vote != old.vote:
            raise SafetyViolation(
                f"{what} vote of node {node} changed within term {new.term}: "
                f"{old.vote}->{new.vote}"
            )
        if new.commit < old.commit:
            raise SafetyViolation(
                f"{what} commit of node {node} went back {old.commit}->{new.commit}"
            )

    def observe_durable(self, node: int, hs: HardState) -> None:
        old = self.durable.get(node)
        if old is not None:
            self._step("durable", node, old, hs)
        self.durable[node] = hs

    def observe_live(self, node: int, incarnation: int, term: int, vote: int, commit: int) -> None:
        new = HardState(term, vote, commit)
        old = self.live.get(node)
        if old is not None and old[0] == incarnation:
            self._step("live", node, HardState(*old[1:]), new)
        self.live[node] = (incarnation, term, vote, commit)
        # The running core is never behind its own disk.
        disk = self.durable.get(node)
        if disk is not None:
            self._step("live-vs-disk", node, disk, new)


# ============================================================================ votes and durability
@dataclass(slots=True)
class VoteLedger:
    votes: dict[tuple[int, int], int] = field(default_factory=dict)
    """(voter, term) -> the candidate that voter was seen voting for: a grant sent on the
    wire, or a vote on its disk."""

    def _record(self, voter: int, term: int, candidate: int, how: str) -> None:
        prev = self.votes.setdefault((voter, term), candidate)
        if prev != candidate:
            raise SafetyViolation(
                f"double vote: node {voter} voted for {prev} and for {candidate} "
                f"in term {term} ({how})"
            )

    def observe_sent(self, msg: Message) -> None:
        if isinstance(msg, VoteResponse) and msg.granted and not msg.pre_vote:
            self._record(msg.src, msg.term, msg.dst, "grant sent")

    def observe_durable(self, node: int, hs: HardState) -> None:
        if hs.vote:
            self._record(node, hs.term, hs.vote, "vote on disk")


_LEADER_MESSAGES = (AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow)


def check_durable_before_send(
    msg: Message, hs: HardState, last_index: int, snapshot_index: int
) -> None:
    """``msg`` is leaving its sender whose disk holds hard state ``hs`` and a log ending
    at ``last_index`` (after a snapshot at ``snapshot_index``).

    Checked: what a peer relies on after the sender crashes and restarts from its disk.
    A vote grant needs the vote on disk (or a later term); an append ack needs the
    acknowledged entries on disk (unless a later term superseded them); a leader's
    messages need its term on disk (it may count its own vote only once durable); a vote
    request (not pre-vote) needs its term, self-vote and claimed log on disk (grants bind
    voters to them). Other requests, rejections, heartbeat answers and pre-vote traffic
    promise nothing durable: they may carry a term not yet on disk."""
    name = type(msg).__name__
    if isinstance(msg, RequestVote) and not msg.pre_vote:
        _check_vote_request_durable(msg, hs, max(last_index, snapshot_index))
        return
    if isinstance(msg, VoteResponse):
        promises = msg.granted and not msg.pre_vote
    elif isinstance(msg, AppendResponse):
        promises = not msg.reject
    else:
        promises = isinstance(msg, _LEADER_MESSAGES)
    if not promises:
        return
    if msg.term > hs.term:
        raise SafetyViolation(
            f"persist before send: node {msg.src} sent {name} in term {msg.term} to "
            f"{msg.dst} with term {hs.term} on disk"
        )
    if isinstance(msg, VoteResponse) and hs.term == msg.term and hs.vote != msg.dst:
        raise SafetyViolation(
            f"persist before send: node {msg.src} granted its term-{msg.term} vote to "
            f"{msg.dst} with vote {hs.vote} on disk"
        )
    if isinstance(msg, AppendResponse) and hs.term == msg.term:
        if msg.index > max(last_index, snapshot_index):
            raise SafetyViolation(
                f"persist before send: node {msg.src} acknowledged index {msg.index} to "
                f"{msg.dst} with only {last_index} on disk"
            )


def _check_vote_request_durable(msg: RequestVote, hs: HardState, last_index: int) -> None:
    if msg.term > hs.term:
        raise SafetyViolation(
            f"persist before send: node {msg.src} asked {msg.dst} for its vote in term "
            f"{msg.term} with term {hs.term} on disk"
        )
    if msg.term == hs.term and (hs.vote != msg.src or msg.last_index > last_index):
        raise SafetyViolation(
            f"persist before send: node {msg.src} asked {msg.dst} for its term-{msg.term} "
            f"vote claiming last index {msg.last_index} with vote {hs.vote} and only "
            f"{last_index} on disk"
        )


# ============================================================================ linearizable reads
@dataclass(slots=True)
class ReadSafety:
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    """request id -> (node asked, highest commit index observed anywhere when asked)."""
    done: dict[int, str] = field(default_factory=dict)
    """request id -> "answered" / "dropped"."""
    served: int = 0

    def issued(self, req: int, node: int, min_index: int) -> None:
        self.pending[req] = (node, min_index)

    def answered(self, req: int, node: int, index: int) -> None:
        asked = self._close(req, node, "answered")
        if index < asked[1]:
            raise SafetyViolation(
                f"linearizable read: request {req} on node {node} got read index {index}, "
                f"but index {asked[1]} was committed before it was issued"
            )
        self.served += 1

    def dropped(self, req: int, node: int) -> None:
        self._close(req, node, "dropped")

    def _close(self, req: int, node: int, how: str) -> tuple[int, int]:
        if req in self.done:
            raise SafetyViolation(f"read request {req} {how} after being {self.done[req]}")
        asked = self.pending.get(req)
        if asked is None or asked[0] != node:
            raise SafetyViolation(f"node {node} {how} read request {req} it was never asked")
        del self.pending[req]
        self.done[req] = how
        return asked

    def forget_node(self, node: int) -> None:
        """``node`` crashed: its outstanding reads die with it (the client times out)."""
        for req in [r for r, (n, _) in self.pending.items() if n == node]:
            del self.pending[req]
            self.done[req] = "lost in crash"
