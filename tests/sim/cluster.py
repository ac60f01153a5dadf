"""A simulated cluster: RawNodes over a SimNetwork, driven through the Ready contract.

Theory of operation
- Each node has a *disk* that survives crashes: its MemoryLogStore (log, hard state,
  membership, snapshot metadata) and its state machine, an ``applied`` list of entries
  from index 1 (its length is the applied index) plus the membership as applied. The
  state machine is written together with its applied index at apply time, one entry at a
  time, like the real KV store (one LMDB transaction per applied batch).
- The running core (``RawNode``) and the Ready in progress are memory: a crash drops them.
- A Ready goes through the stages of the runtime, one action each, so anything may happen
  between two of them (input to the same core, crashes of any node):

    take     ready(); ``messages`` go on the wire at once (the contract allows it)
    persist  store.save(entries, hard_state, snapshot) -- one atomic write; a received
             snapshot's data is restored into the state machine in the same write
    send     ``persisted_messages`` go on the wire
    apply    committed entries, a few at a time (CONF_CHANGE via apply_conf_change and
             save_conf_state with the entry)
    advance  advance(ready)

- Snapshots: a node snapshots its state machine at its applied index and compacts its
  store. The data is kept in a side table keyed by (node, index); delivering an
  InstallSnapshot copies the leader's data to the receiver's table, as the transport
  would stream the file before stepping the message.
- Every action ends with ``observe()``, which feeds the checkers of ``invariants.py``.
  Writes, applies and sends are checked as they happen.

All randomness comes from the caller (indexes, choices) and from one ``random.Random``
per core incarnation derived from the cluster seed, so a schedule replays exactly. The
cluster's knobs (core config, network and clock modes) are ``SimOptions`` (options.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from kvraft.core import RawNode
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    InstallSnapshot,
    Message,
    Ready,
    RequestVote,
    Role,
    SnapshotMeta,
    VoteResponse,
    decode_conf_change,
)
from kvraft.errors import (
    Compacted,
    ConfChangeInProgress,
    InvalidConfChange,
    NotLeader,
    ProposalDropped,
    Unavailable,
)
from kvraft.storage.memory import MemoryLogStore
from tests.sim.invariants import (
    ElectionSafety,
    LeaderCompleteness,
    LogMatching,
    Monotonicity,
    ReadSafety,
    SafetyViolation,
    StateMachineSafety,
    VoteLedger,
    check_durable_before_send,
)
from tests.sim.network import SimNetwork
from tests.sim.options import SimOptions

# Stages of the Ready in progress (SimNode.stage).
TAKEN, PERSISTED, SENT, APPLIED = 0, 1, 2, 3
# The errors a caller of the core must expect (anything else is a bug).
REFUSALS = (NotLeader, ProposalDropped, ConfChangeInProgress, InvalidConfChange)
STAGE_NAMES = ("taken", "persisted", "sent", "applied")


@dataclass(slots=True)
class Disk:
    """What survives a crash of one node."""

    store: MemoryLogStore
    applied: list[Entry] = field(default_factory=list)
    """The state machine: applied[i-1] is the entry applied at index i (applied index =
    len)."""
    conf_state: ConfState = field(default_factory=ConfState)
    """Membership as of the applied index (what a snapshot taken now records)."""


@dataclass(slots=True)
class SimNode:
    id: int
    disk: Disk
    raw: RawNode | None = None
    """The running core; None while crashed."""
    incarnation: int = 0
    """Incremented by every restart; seeds the core's rng."""
    pending: Ready | None = None
    """The Ready handed out and not yet advanced (at most one)."""
    stage: int = TAKEN
    """How far ``pending`` went: TAKEN, PERSISTED, SENT or APPLIED."""
    applied_in_pending: int = 0
    """How many of pending.committed_entries are applied."""
    seen_commit: int = 0
    """Commit index up to which the terms of n's committed entries were recorded."""

    @property
    def alive(self) -> bool:
        return self.raw is not None


class Cluster:
    """N nodes (+1 spare), the network, the snapshot side table and the checkers."""

    def __init__(
        self, opts: SimOptions, seed: int, trace: Callable[[str], None] | None = None
    ) -> None:
        self.opts = opts
        self.seed = seed
        self.trace = trace
        self.net = SimNetwork()
        self.now = 0  # global ticks so far (ages messages in bounded-delay mode)
        self.sent_at: dict[int, int] = {}  # envelope seq -> global tick it was sent at
        self.snapshots: dict[tuple[int, int], tuple[Entry, ...]] = {}  # (node, index) -> data
        self.next_req = 1
        self._roles: dict[int, tuple[Role, int]] = {}  # for the trace only
        self.next_prop = 1
        self.elections = ElectionSafety()
        self.logs = LogMatching()
        self.completeness = LeaderCompleteness()
        self.sm = StateMachineSafety()
        self.mono = Monotonicity()
        self.votes = VoteLedger()
        self.reads = ReadSafety()
        voters = ConfState(voters=frozenset(range(1, opts.nodes + 1)))
        self.nodes: dict[int, SimNode] = {}
        for i in range(1, opts.nodes + 2):
            store = MemoryLogStore()
            cs = voters if i <= opts.nodes else ConfState()
            store.save_conf_state(cs)
            self.nodes[i] = SimNode(i, Disk(store, conf_state=cs))
            self._start(self.nodes[i])
        self.observe()

    # ================================================================== helpers
    def log(self, line: str) -> None:
        if self.trace is not None:
            self.trace(line)

    def ids(self) -> list[int]:
        return list(self.nodes)

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.raw is not None]

    def leaders(self) -> list[SimNode]:
        return [n for n in self.live() if n.raw is not None and n.raw.role == Role.LEADER]

    def _raw(self, n: SimNode) -> RawNode:
        assert n.raw is not None, f"node {n.id} is down"
        return n.raw

    def _start(self, n: SimNode) -> None:
        rng = random.Random(f"{self.seed}/{n.id}/{n.incarnation}")
        n.raw = RawNode(self.opts.config(n.id, len(n.disk.applied)), n.disk.store, rng)
        n.pending, n.stage, n.applied_in_pending = None, TAKEN, 0
        n.seen_commit = n.raw.commit

    def term_at(self, n: SimNode, index: int) -> int | None:
        """Term of entry ``index`` in n's log as far as the simulator can see it: the
        store overlaid with the entries of a Ready not yet persisted. None if unknown."""
        rd = n.pending
        if rd is not None and n.stage == TAKEN:
            if rd.snapshot is not None:
                return None
            if rd.entries and index >= rd.entries[0].index:
                k = index - rd.entries[0].index
                return rd.entries[k].term if k < len(rd.entries) else None
        try:
            return n.disk.store.term(index)
        except (Compacted, Unavailable):
            return None

    # ================================================================== observation
    def observe(self) -> None:
        """Check every live node's volatile state; called after every action."""
        for n in self.live():
            raw = self._raw(n)
            term, commit = raw.term, raw.commit
            self.mono.observe_live(n.id, n.incarnation, term, raw.vote, commit)
            self.completeness.observe_commit(term, commit)
            if self.trace is not None and self._roles.get(n.id) != (raw.role, term):
                self._roles[n.id] = (raw.role, term)
                self.log(f"      n{n.id} is {raw.role.name} in term {term}")
            if raw.applied > commit:
                raise SafetyViolation(f"node {n.id} applied {raw.applied} > commit {commit}")
            if len(n.disk.applied) > commit:
                raise SafetyViolation(
                    f"node {n.id}: state machine at {len(n.disk.applied)} > commit {commit}"
                )
            if raw.role == Role.LEADER:
                self.elections.observe(term, n.id, "role")
                self.completeness.check_leader_index(n.id, term, raw.last_index)

    def _send(self, n: SimNode, msg: Message) -> None:
        if msg.src != n.id:
            raise SafetyViolation(f"node {n.id} sent a message from {msg.src}: {msg!r}")
        store = n.disk.store
        hs, _ = store.initial_state()
        check_durable_before_send(msg, hs, store.last_index(), store.snapshot_meta().index)
        self.votes.observe_sent(msg)
        self.elections.observe_sent(msg)
        env = self.net.send(msg)
        self.sent_at[env.seq] = self.now

    # ================================================================== the Ready pipeline
    def take_ready(self, node: int) -> str:
        n = self.nodes[node]
        raw = self._raw(n)
        if n.pending is not None or not raw.has_ready():
            return "nothing to take"
        rd = raw.ready()
        n.pending, n.stage, n.applied_in_pending = rd, TAKEN, 0
        self._check_exact_log(n, raw)
        for m in rd.messages:
            self._send(n, m)
        for req in rd.dropped_reads:
            self.reads.dropped(req, n.id)
        for rs in rd.read_states:
            self.reads.answered(rs.request_id, n.id, rs.index)
        return (
            f"ready: hs={rd.hard_state} entries={_span(rd.entries)} snap={rd.snapshot} "
            f"msgs={len(rd.messages)}+{len(rd.persisted_messages)} "
            f"commit={_span(rd.committed_entries)} reads={len(rd.read_states)}"
        )

    def _check_exact_log(self, n: SimNode, raw: RawNode) -> None:
        """Right after ready() the store overlaid with the Ready's entries is exactly the
        core's log: check what needs the terms of its entries."""
        commit = raw.commit
        if commit > n.seen_commit:
            if self.trace is not None:
                terms = [self.term_at(n, i) for i in range(n.seen_commit + 1, commit + 1)]
                self.log(f"      n{n.id} (t{raw.term}) commit {n.seen_commit}->{commit} {terms}")
            self.completeness.record_committed(
                n.id, n.seen_commit, commit, lambda i: self.term_at(n, i)
            )
            n.seen_commit = commit
        if raw.role == Role.LEADER:
            self.completeness.check_leader_log(n.id, raw.term, lambda i: self.term_at(n, i))

    def persist(self, n: SimNode) -> str:
        rd = n.pending
        assert rd is not None and n.stage == TAKEN
        store = n.disk.store
        if rd.snapshot is not None:
            data = self.snapshots.get((n.id, rd.snapshot.index))
            if data is None:
                raise SafetyViolation(
                    f"node {n.id} must install snapshot {rd.snapshot.index} it never received"
                )
            self.sm.observe_restore(n.id, len(n.disk.applied), data)
            if data[-1].term != rd.snapshot.term:
                raise SafetyViolation(f"snapshot meta {rd.snapshot} does not match its data")
        store.save(entries=rd.entries, hard_state=rd.hard_state, snapshot=rd.snapshot)
        if rd.snapshot is not None:  # restored in the same atomic write as the store
            n.disk.applied = list(data)
            n.disk.conf_state = rd.snapshot.conf_state
        if rd.entries:
            first = rd.entries[0].index
            self.logs.check_entries(n.id, store.term(first - 1), rd.entries)
        hs, _ = store.initial_state()
        self.mono.observe_durable(n.id, hs)
        self.votes.observe_durable(n.id, hs)
        n.stage = PERSISTED
        return "persisted"

    def send_persisted(self, n: SimNode) -> str:
        assert n.pending is not None and n.stage == PERSISTED
        for m in n.pending.persisted_messages:
            self._send(n, m)
        n.stage = SENT
        return f"sent {len(n.pending.persisted_messages)} persisted messages"

    def apply(self, n: SimNode, count: int) -> str:
        rd = n.pending
        assert rd is not None and n.stage == SENT
        raw, store = self._raw(n), n.disk.store
        todo = rd.committed_entries[n.applied_in_pending : n.applied_in_pending + count]
        for e in todo:
            if e.index > store.last_index() or self.term_at(n, e.index) not in (e.term, None):
                raise SafetyViolation(f"node {n.id} applies {e!r}, which is not durable")
            self.sm.observe_apply(n.id, len(n.disk.applied), e)
            if e.type == EntryType.CONF_CHANGE:
                cs = raw.apply_conf_change(decode_conf_change(e.data))
                store.save_conf_state(cs)
                n.disk.conf_state = cs
            n.disk.applied.append(e)
            n.applied_in_pending += 1
        if n.applied_in_pending == len(rd.committed_entries):
            n.stage = APPLIED
        return f"applied {_span(todo)}"

    def advance(self, n: SimNode) -> str:
        assert n.pending is not None and n.stage == APPLIED
        self._raw(n).advance(n.pending)
        n.pending = None
        return "advanced"

    def step_ready(self, node: int, apply_batch: int = 1 << 30) -> str:
        """Move node's Ready pipeline by one stage (taking a new Ready if none is out)."""
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        if n.pending is None:
            return self.take_ready(node)
        if n.stage == TAKEN:
            return self.persist(n)
        if n.stage == PERSISTED:
            return self.send_persisted(n)
        if n.stage == SENT:
            return self.apply(n, apply_batch)
        return self.advance(n)

    def drain(self, node: int, limit: int = 20) -> int:
        """Run node's pipeline until it has nothing more to do; returns Readys finished."""
        n = self.nodes[node]
        done = 0
        while n.raw is not None and done < limit:
            if n.pending is None and not n.raw.has_ready():
                break
            self.step_ready(node)
            if n.pending is None:
                done += 1
        return done

    # ================================================================== network actions
    def deliver(self, i: int) -> str:
        if not self.net.inflight:
            return "no message"
        i %= len(self.net.inflight)
        seq, msg = self.net.inflight[i].seq, self.net.inflight[i].msg
        if self.net.waits(i):
            return f"#{seq} waits (link {msg.src}->{msg.dst} stalled)"
        got = self.net.take(i)
        sent = self.sent_at.pop(seq, self.now)
        if got is None:
            self._report_failure(msg)
            return f"#{seq} lost (link cut)"
        assert self.opts.max_delay_ticks is None or self.now - sent <= self.opts.max_delay_ticks
        dst = self.nodes.get(msg.dst)
        if dst is None or dst.raw is None:
            self._report_failure(msg)
            return f"#{seq} to a down node"
        if isinstance(msg, InstallSnapshot):
            data = self.snapshots.get((msg.src, msg.meta.index))
            if data is None:
                raise SafetyViolation(f"node {msg.src} sent snapshot {msg.meta} it never took")
            self.snapshots[(msg.dst, msg.meta.index)] = data
        dst.raw.step(msg)
        src = self.nodes.get(msg.src)
        if isinstance(msg, InstallSnapshot) and src is not None and src.raw is not None:
            src.raw.report_snapshot(msg.dst, True)
        return f"#{seq} {_fmt(msg)}"

    def _report_failure(self, msg: Message) -> None:
        """What the transport tells the sender when a stream to msg.dst breaks."""
        src = self.nodes.get(msg.src)
        if src is None or src.raw is None:
            return
        if isinstance(msg, InstallSnapshot):
            src.raw.report_snapshot(msg.dst, False)
        elif isinstance(msg, AppendEntries):
            src.raw.report_unreachable(msg.dst)

    def drop(self, i: int) -> str:
        if not self.net.inflight:
            return "no message"
        env = self.net.drop(i % len(self.net.inflight))
        self.sent_at.pop(env.seq, None)
        self._report_failure(env.msg)
        return f"dropped #{env.seq} {_fmt(env.msg)}"

    def duplicate(self, i: int) -> str:
        if not self.net.inflight:
            return "no message"
        env = self.net.duplicate(i % len(self.net.inflight))
        self.sent_at[env.seq] = self.now
        return f"duplicated as #{env.seq} {_fmt(env.msg)}"

    def partition(self, groups: list[list[int]]) -> str:
        self.net.partition(groups)
        return f"partition {groups}: cut {self.net.describe_cuts()}"

    def cut_one_way(self, src: int, dst: int) -> str:
        self.net.cut_one_way(src, dst)
        return f"cut {src}->{dst}"

    def stall(self, node: int) -> str:
        """Node's links hold what they carry (its streams are down, senders queue); only
        with unbounded delays."""
        assert self.opts.max_delay_ticks is None, "a stall breaks the delay bound"
        self.net.stall_node(node, self.ids())
        return f"stall n{node}: {self.net.describe_stalls()}"

    def release(self, node: int, *, inbound: bool) -> str:
        """What waits on the stalled links into (or out of) ``node`` may now arrive,
        late; the links stay stalled."""
        n = self.net.release(dst=node) if inbound else self.net.release(src=node)
        return f"release {n} {'into' if inbound else 'out of'} n{node}"

    def heal(self) -> str:
        self.net.heal()
        return "healed"

    # ================================================================== node actions
    def tick_all(self) -> str:
        limit = self.opts.max_delay_ticks
        if limit is not None:  # deliver what would otherwise exceed the delay bound
            while True:
                due = [
                    i
                    for i, env in enumerate(self.net.inflight)
                    if self.now + 1 - self.sent_at.get(env.seq, self.now) > limit
                ]
                if not due:
                    break
                self.log(f"      due: {self.deliver(due[0])}")
        self.now += 1
        flushed = []
        for n in self.live():
            raw = self._raw(n)
            if self.opts.lazy_commit and raw.commit_unsent():
                raw.flush_commit()  # what the runtime's commit flush timer does
                flushed.append(n.id)
            raw.tick()
        return f"tick all (now {self.now})" + (f", commit flushed by {flushed}" if flushed else "")

    def tick(self, node: int) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        n.raw.tick()
        return "tick"

    def campaign(self, node: int) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        n.raw.campaign()
        return "campaign"

    def crash(self, node: int) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "already down"
        stage = "idle" if n.pending is None else STAGE_NAMES[n.stage]
        n.raw, n.pending = None, None
        self.reads.forget_node(n.id)
        return f"crash (ready {stage})"

    def restart(self, node: int) -> str:
        n = self.nodes[node]
        if n.raw is not None:
            return "already up"
        n.incarnation += 1
        self._start(n)
        raw = self._raw(n)
        return f"restart: term {raw.term} vote {raw.vote} commit {raw.commit} applied {raw.applied}"

    def propose(self, node: int, data: bytes | None = None) -> tuple[str, int | None]:
        n = self.nodes[node]
        if n.raw is None:
            return "down", None
        if data is None:
            data = f"v{self.next_prop}@{node}".encode()
            self.next_prop += 1
        try:
            index = n.raw.propose(data)
        except REFUSALS as exc:
            return f"propose refused: {type(exc).__name__}", None
        return f"proposed {data!r} at {index}", index

    def read_index(self, node: int, lease: bool = False) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        if lease and not self.opts.lease_reads:
            lease = False  # lease reads are only safe without clock drift
        req = self.next_req
        self.next_req += 1
        try:
            n.raw.read_index(req, lease=lease)
        except REFUSALS as exc:
            return f"read refused: {type(exc).__name__}"
        self.reads.issued(req, node, self.completeness.max_commit)
        return f"read_index req {req} (lease={lease}) must see >= {self.completeness.max_commit}"

    def snapshot(self, node: int) -> str:
        """The state machine snapshots itself at its applied index; the store compacts."""
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        store, applied = n.disk.store, len(n.disk.applied)
        if applied <= store.snapshot_meta().index:
            return "nothing new to snapshot"
        meta = SnapshotMeta(applied, store.term(applied), n.disk.conf_state)
        self.snapshots[(n.id, applied)] = tuple(n.disk.applied)
        store.compact(meta)
        return f"snapshot at {applied} (term {meta.term})"

    def transfer(self, node: int, to: int) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        try:
            n.raw.transfer_leadership(to)
        except REFUSALS as exc:
            return f"transfer refused: {type(exc).__name__}"
        return f"transfer leadership to {to}"

    def conf_change(self, node: int, kind: ConfChangeType, target: int) -> str:
        n = self.nodes[node]
        if n.raw is None:
            return "down"
        try:
            index = n.raw.propose_conf_change(ConfChange(kind, target))
        except REFUSALS as exc:
            return f"conf change refused: {type(exc).__name__}"
        return f"proposed {kind.name} {target} at {index}"

    def summary(self) -> str:
        parts = []
        for n in self.nodes.values():
            if n.raw is None:
                parts.append(f"{n.id}:down(applied {len(n.disk.applied)})")
                continue
            r = n.raw
            parts.append(
                f"{n.id}:{r.role.name[:4]} t{r.term} c{r.commit} a{len(n.disk.applied)} "
                f"last{r.last_index}"
            )
        return " | ".join(parts)


def _span(entries: tuple[Entry, ...]) -> str:
    if not entries:
        return "-"
    return f"[{entries[0].index}..{entries[-1].index}]"


def _fmt(msg: Message) -> str:
    name = type(msg).__name__
    extra = ""
    if isinstance(msg, AppendEntries):
        extra = f" prev=({msg.prev_index},{msg.prev_term}) n={len(msg.entries)} c={msg.commit}"
    elif isinstance(msg, RequestVote):
        extra = f" last=({msg.last_index},{msg.last_term}){' pre' * msg.pre_vote}"
        extra += " transfer" * msg.transfer
    elif isinstance(msg, VoteResponse):
        extra = f" {'granted' if msg.granted else 'rejected'}{' pre' * msg.pre_vote}"
    elif isinstance(msg, AppendResponse):
        extra = f" index={msg.index}" + (f" reject hint={msg.hint_index}" if msg.reject else "")
    elif isinstance(msg, InstallSnapshot):
        extra = f" snap=({msg.meta.index},{msg.meta.term})"
    return f"{name} {msg.src}->{msg.dst} t{msg.term}{extra}"


