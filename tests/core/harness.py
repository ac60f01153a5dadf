"""Test harness for the Raft core: an in-memory log store, a cluster of RawNodes over a
hand-driven network, and ``describe()`` helpers that render Readys and messages as text
so that scenario tests read like transcripts.

The network is a FIFO list of in-flight messages; tests decide when to deliver, which
links are cut, and which messages to drop. A node processes a Ready exactly as the
runtime will: persist (MemStore.save), send, apply, advance.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from kvraft.core import Config, RawNode
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    ReadState,
    Ready,
    RequestVote,
    Role,
    SnapshotMeta,
    TimeoutNow,
    VoteResponse,
    decode_conf_change,
)
from kvraft.errors import Compacted, Unavailable


# ============================================================================ store
class MemStore:
    """A minimal LogReader + ``save`` following the LogStore contract (tests only)."""

    def __init__(self, voters: Iterable[int] = (), learners: Iterable[int] = ()) -> None:
        self.hard = HardState()
        self.conf = ConfState(voters=frozenset(voters), learners=frozenset(learners))
        self.snap = SnapshotMeta(conf_state=self.conf)
        self.ents: list[Entry] = []  # ents[k].index == snap.index + 1 + k
        self.saves = 0

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard, self.conf

    def first_index(self) -> int:
        return self.snap.index + 1

    def last_index(self) -> int:
        return self.snap.index + len(self.ents)

    def snapshot_meta(self) -> SnapshotMeta:
        return self.snap

    def term(self, index: int) -> int:
        if index == self.snap.index:
            return self.snap.term
        if index < self.snap.index:
            raise Compacted(f"index {index} compacted")
        if index > self.last_index():
            raise Unavailable(f"index {index} beyond {self.last_index()}")
        return self.ents[index - self.snap.index - 1].term

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo < self.first_index():
            raise Compacted(f"index {lo} compacted")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} beyond {self.last_index()}")
        out = self.ents[lo - self.snap.index - 1 : hi - self.snap.index - 1]
        if max_bytes is None:
            return out
        size = 0
        for k, e in enumerate(out):
            size += e.size()
            if k and size > max_bytes:
                return out[:k]
        return out

    def save(
        self,
        *,
        entries: Iterable[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
    ) -> None:
        self.saves += 1
        if snapshot is not None:
            keep = self.snap.index <= snapshot.index <= self.last_index() and (
                self.term(snapshot.index) == snapshot.term
            )
            if keep:
                self.ents = self.ents[snapshot.index - self.snap.index :]
            else:
                self.ents = []
            self.snap = snapshot
            self.conf = snapshot.conf_state
        ents = list(entries)
        if ents:
            first = ents[0].index
            assert self.snap.index < first <= self.last_index() + 1, "save gap"
            del self.ents[first - self.snap.index - 1 :]
            self.ents.extend(ents)
        if hard_state is not None:
            self.hard = hard_state

    def compact(self, meta: SnapshotMeta) -> None:
        assert self.snap.index <= meta.index <= self.last_index()
        self.ents = self.ents[meta.index - self.snap.index :]
        self.snap = meta

    def save_conf_state(self, cs: ConfState) -> None:
        self.conf = cs


# ============================================================================ describe
def _ents(entries: Iterable[Entry]) -> str:
    parts = []
    for e in entries:
        if e.type is EntryType.CONF_CHANGE:
            cc = decode_conf_change(e.data)
            parts.append(f"{e.index}/{e.term}:{cc.type.name.lower()}({cc.node_id})")
        elif e.data:
            parts.append(f"{e.index}/{e.term}:{e.data.decode(errors='replace')}")
        else:
            parts.append(f"{e.index}/{e.term}")
    return "[" + " ".join(parts) + "]"


def describe_msg(m: Message) -> str:
    head = f"{m.src}->{m.dst} "
    match m:
        case AppendEntries():
            body = (
                f"App t{m.term} prev={m.prev_index}/{m.prev_term} {_ents(m.entries)} "
                f"commit={m.commit}"
            )
        case AppendResponse():
            body = f"AppResp t{m.term} index={m.index}"
            if m.reject:
                body += f" reject hint={m.hint_index}/{m.hint_term}"
        case RequestVote():
            kind = "PreVote" if m.pre_vote else "Vote"
            body = f"{kind} t{m.term} last={m.last_index}/{m.last_term}"
            if m.transfer:
                body += " transfer"
        case VoteResponse():
            kind = "PreVoteResp" if m.pre_vote else "VoteResp"
            body = f"{kind} t{m.term} {'granted' if m.granted else 'rejected'}"
        case Heartbeat():
            body = f"Heartbeat t{m.term} commit={m.commit}"
            if m.context:
                body += f" ctx={m.context}"
        case HeartbeatResponse():
            body = f"HeartbeatResp t{m.term}"
            if m.context:
                body += f" ctx={m.context}"
        case InstallSnapshot():
            body = f"Snapshot t{m.term} index={m.meta.index}/{m.meta.term}"
        case TimeoutNow():
            body = f"TimeoutNow t{m.term}"
    return head + body


def describe_ready(node: int, rd: Ready) -> str:
    lines = []
    if rd.soft_state is not None:
        ss = rd.soft_state
        lines.append(f"{node}: soft {ss.role.name.lower()} leader={ss.leader} t{ss.term}")
    if rd.hard_state is not None:
        hs = rd.hard_state
        lines.append(f"{node}: hard t{hs.term} vote={hs.vote} commit={hs.commit}")
    if rd.snapshot is not None:
        lines.append(f"{node}: snapshot {rd.snapshot.index}/{rd.snapshot.term}")
    if rd.entries:
        lines.append(f"{node}: entries {_ents(rd.entries)}")
    if rd.committed_entries:
        lines.append(f"{node}: apply {_ents(rd.committed_entries)}")
    for rs in rd.read_states:
        lines.append(f"{node}: read {rs.request_id} at {rs.index}")
    if rd.dropped_reads:
        lines.append(f"{node}: dropped reads {list(rd.dropped_reads)}")
    lines.extend(f"  send {describe_msg(m)}" for m in rd.messages)
    lines.extend(f"  send after persist {describe_msg(m)}" for m in rd.persisted_messages)
    return "\n".join(lines)


# ============================================================================ cluster
@dataclass
class Node:
    id: int
    store: MemStore
    raw: RawNode
    applied: list[Entry] = field(default_factory=list)  # NORMAL entries with data, in order
    applied_index: int = 0  # pretend-durable state machine position
    reads: list[ReadState] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    alive: bool = True


Filter = Callable[[Message], "bool | Message"]
"""Network filter: True drops a message, False lets it through, a Message replaces it."""

SNAPSHOT_DATA: dict[tuple[int, int], list[Entry]] = {}
"""State machine contents at (index, term), shared by all nodes (Raft makes it unique)."""


class Cluster:
    """N RawNodes over a hand-driven network. ``trace`` collects the transcript."""

    def __init__(
        self,
        voters: int | Iterable[int] = 3,
        *,
        learners: Iterable[int] = (),
        extra: Iterable[int] = (),
        seed: int = 0,
        **config: object,
    ) -> None:
        ids = list(range(1, voters + 1)) if isinstance(voters, int) else list(voters)
        self.voters = ids
        self.learner_ids = list(learners)
        self.config = config
        self.rng = random.Random(seed)
        self.nodes: dict[int, Node] = {}
        for nid in ids + self.learner_ids:
            self.nodes[nid] = self._make(nid, MemStore(ids, self.learner_ids), 0)
        for nid in extra:  # started empty, waiting to be added
            self.nodes[nid] = self._make(nid, MemStore(), 0)
        self.network: list[Message] = []
        self.cut: set[tuple[int, int]] = set()
        self.trace: list[str] = []
        self.recording = False

    def _make(self, nid: int, store: MemStore, applied: int) -> Node:
        cfg = Config(id=nid, applied=applied, **self.config)  # type: ignore[arg-type]
        return Node(nid, store, RawNode(cfg, store, random.Random(self.rng.random())))

    def __getitem__(self, nid: int) -> RawNode:
        return self.nodes[nid].raw

    # -------------------------------------------------------------- processing
    def process(self, nid: int, *, send: bool = True) -> Ready | None:
        """Run one Ready cycle of ``nid`` (persist, send, apply, advance)."""
        node = self.nodes[nid]
        if not node.alive or not node.raw.has_ready():
            return None
        rd = node.raw.ready()
        if self.recording:
            text = describe_ready(nid, rd)
            if text:
                self.trace.append(text)
        check_message_split(rd)
        node.store.save(entries=rd.entries, hard_state=rd.hard_state, snapshot=rd.snapshot)
        if rd.snapshot is not None:
            node.applied = list(SNAPSHOT_DATA.get((rd.snapshot.index, rd.snapshot.term), []))
            node.applied_index = rd.snapshot.index
        if send:
            self.network.extend(rd.messages)
            self.network.extend(rd.persisted_messages)
        for e in rd.committed_entries:
            if e.type is EntryType.CONF_CHANGE:
                cs = node.raw.apply_conf_change(decode_conf_change(e.data))
                node.store.save_conf_state(cs)
            elif e.data:
                node.applied.append(e)
            node.applied_index = e.index
        node.reads.extend(rd.read_states)
        node.dropped.extend(rd.dropped_reads)
        node.raw.advance(rd)
        return rd

    def deliver(self, drop: Filter | None = None) -> int:
        """Deliver every in-flight message once (those sent meanwhile wait); returns how
        many were delivered."""
        batch, self.network = self.network, []
        n = 0
        for m in batch:
            dst = self.nodes.get(m.dst)
            if dst is None or not dst.alive or (m.src, m.dst) in self.cut:
                continue
            if drop is not None:
                verdict = drop(m)
                if verdict is True:
                    continue
                if verdict is not False:
                    m = verdict
            if self.recording:
                self.trace.append(f"  deliver {describe_msg(m)}")
            dst.raw.step(m)
            n += 1
        return n

    def stabilize(self, drop: Filter | None = None, limit: int = 10000) -> None:
        """Process and deliver until the cluster is quiet."""
        for _ in range(limit):
            busy = False
            for nid in sorted(self.nodes):
                if self.process(nid) is not None:
                    busy = True
            if self.network:
                self.deliver(drop)
                busy = True
            if not busy:
                return
        raise AssertionError("cluster did not stabilize")

    def round(self, drop: Filter | None = None) -> None:
        """One step of the whole cluster: every node processes a Ready, then every
        in-flight message is delivered once (one network hop)."""
        for nid in sorted(self.nodes):
            self.process(nid)
        self.deliver(drop)

    def rounds_until(self, done: Callable[[], bool], limit: int = 100) -> int:
        """Run rounds until ``done()``; returns how many it took."""
        for n in range(limit + 1):
            if done():
                return n
            self.round()
        raise AssertionError(f"condition not reached within {limit} rounds")

    def tick(self, nids: Iterable[int] | None = None, n: int = 1) -> None:
        for _ in range(n):
            for nid in sorted(self.nodes) if nids is None else nids:
                if self.nodes[nid].alive:
                    self.nodes[nid].raw.tick()

    def run(self, ticks: int, drop: Filter | None = None) -> None:
        """Tick every live node ``ticks`` times, stabilizing after each tick."""
        for _ in range(ticks):
            self.tick()
            self.stabilize(drop)

    def expire_leader(self) -> None:
        """Let every live node's election timer run out once (so none still believes in
        a leader), discarding the campaign messages that causes."""
        ticks = int(self.config.get("election_ticks", 10))  # type: ignore[call-overload]
        self.tick(n=ticks)
        for nid in sorted(self.nodes):
            self.process(nid, send=False)

    def elect(self, nid: int) -> None:
        """Make ``nid`` leader (campaign, then let the network settle; a campaign that
        only teaches it a higher term is retried)."""
        for _ in range(3):
            self[nid].campaign()
            self.stabilize()
            if self[nid].role is Role.LEADER:
                break
        assert self[nid].role is Role.LEADER, f"node {nid} did not win: {self[nid].status()}"

    # -------------------------------------------------------------- faults
    def isolate(self, nid: int) -> None:
        for other in self.nodes:
            if other != nid:
                self.cut.add((nid, other))
                self.cut.add((other, nid))

    def partition(self, *groups: Iterable[int]) -> None:
        sets = [set(g) for g in groups]
        for a in self.nodes:
            for b in self.nodes:
                if not any(a in s and b in s for s in sets):
                    self.cut.add((a, b))

    def heal(self) -> None:
        self.cut.clear()

    def crash(self, nid: int) -> None:
        """Stop ``nid``; whatever it did not persist is lost."""
        self.nodes[nid].alive = False
        self.network = [m for m in self.network if m.dst != nid]

    def restart(self, nid: int) -> None:
        old = self.nodes[nid]
        node = self._make(nid, old.store, old.applied_index)
        node.applied = old.applied
        node.applied_index = old.applied_index
        self.nodes[nid] = node

    # -------------------------------------------------------------- queries
    def leaders(self) -> list[int]:
        return [n.id for n in self.nodes.values() if n.alive and n.raw.role is Role.LEADER]

    def leader(self) -> int:
        leaders = self.leaders()
        assert len(leaders) == 1, f"expected one leader, got {leaders}"
        return leaders[0]

    def propose(self, nid: int, *payloads: str) -> list[int]:
        return [self[nid].propose(p.encode()) for p in payloads]

    def applied_data(self, nid: int) -> list[str]:
        return [e.data.decode() for e in self.nodes[nid].applied]

    def log_terms(self, nid: int) -> list[tuple[int, int]]:
        """(index, term) of every entry ``nid`` has persisted."""
        store = self.nodes[nid].store
        return [(e.index, e.term) for e in store.ents]

    def take_snapshot(self, nid: int) -> SnapshotMeta:
        """Compact ``nid``'s log at its applied index, as the application would."""
        node = self.nodes[nid]
        index = node.applied_index
        meta = SnapshotMeta(index, node.store.term(index), node.raw.conf_state)
        SNAPSHOT_DATA[(meta.index, meta.term)] = list(node.applied)
        node.store.compact(meta)
        return meta

    def transcript(self) -> str:
        out = "\n".join(self.trace)
        self.trace = []
        return out


def needs_durability(m: Message) -> bool:
    """Messages that need durable state: vote grants, append acks, and vote requests
    (not pre-vote: grants bind voters to the requester's term and log)."""
    if isinstance(m, VoteResponse):
        return m.granted and not m.pre_vote
    if isinstance(m, RequestVote):
        return not m.pre_vote
    return isinstance(m, AppendResponse) and not m.reject


def check_message_split(rd: Ready) -> None:
    """Ready contract: persisted_messages are exactly the vote grants, append acks and
    vote requests."""
    for m in rd.persisted_messages:
        assert needs_durability(m), f"needlessly delayed: {describe_msg(m)}"
    for m in rd.messages:
        assert not needs_durability(m), f"sent before persisting: {describe_msg(m)}"


def start_recording(c: Cluster) -> None:
    c.recording = True
    c.trace = []


def msg_kinds(msgs: Iterable[Message]) -> list[str]:
    return [type(m).__name__ for m in msgs]


def with_term(m: Message, term: int) -> Message:
    return replace(m, term=term)
