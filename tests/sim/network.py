"""The simulated network: a bag of in-flight messages plus a set of cut links.

Theory of operation
- Every message a node sends becomes an :class:`Envelope` in ``inflight`` (the "wire").
  Nothing is delivered by itself: the driver decides, step by step, which envelope to
  deliver, drop or duplicate. Picking any envelope (not only the oldest) gives reordering;
  leaving one in the bag for many steps gives delay.
- A partition is a set of cut *directed* links ``(src, dst)``. A symmetric partition cuts
  both directions between groups; a one-way partition cuts a single direction. An
  envelope whose link is cut when the driver tries to deliver it is lost (as a TCP stream
  broken by the partition would lose it); links are checked at delivery, not at send, so
  a message sent just before a partition can still be lost by it.
- A stalled link (a stream that is down while its sender queues) loses nothing: its
  envelopes wait on the wire. Releasing it lets the envelopes waiting now through, late,
  after whatever happened meanwhile (the stream came back, drained its queue and went
  down again); later ones wait again until the next release or ``heal``.
- The network owns no randomness: callers pass indexes they chose from their own seeded
  ``random.Random`` (or from hypothesis), so a schedule replays exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kvraft.core.types import Message


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message on the wire."""

    seq: int
    """Unique, increasing send number (duplicates get a fresh one); used in traces."""
    msg: Message


@dataclass(slots=True)
class NetStats:
    """Counters for reports; they never influence the schedule."""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    cut: int = 0
    duplicated: int = 0


@dataclass(slots=True)
class SimNetwork:
    """In-flight messages and cut links. Deterministic: no hidden randomness, no clocks."""

    inflight: list[Envelope] = field(default_factory=list)
    """Envelopes sent and not yet delivered or dropped, in send order."""
    cut: set[tuple[int, int]] = field(default_factory=set)
    """Directed links (src, dst) that lose every envelope delivered over them."""
    stalled: set[tuple[int, int]] = field(default_factory=set)
    """Directed links whose envelopes wait (are not delivered) until released."""
    released: set[int] = field(default_factory=set)
    """Seqs of envelopes on stalled links that may be delivered all the same."""
    next_seq: int = 1
    """Invariant: greater than the seq of every envelope ever created."""
    stats: NetStats = field(default_factory=NetStats)

    # ------------------------------------------------------------------ sending
    def send(self, msg: Message) -> Envelope:
        env = Envelope(self.next_seq, msg)
        self.next_seq += 1
        self.inflight.append(env)
        self.stats.sent += 1
        return env

    def __len__(self) -> int:
        return len(self.inflight)

    # ------------------------------------------------------------------ faults
    def take(self, i: int) -> Envelope | None:
        """Remove envelope ``i`` (0 <= i < len) for delivery. Returns None (and counts a
        loss) if its link is cut; the caller delivers what it gets."""
        env = self.inflight.pop(i)
        self.released.discard(env.seq)
        if (env.msg.src, env.msg.dst) in self.cut:
            self.stats.cut += 1
            return None
        self.stats.delivered += 1
        return env

    def oldest_index(self, src: int, dst: int) -> int | None:
        """Index of the oldest envelope on link (src, dst): FIFO delivery per link."""
        for i, env in enumerate(self.inflight):
            if env.msg.src == src and env.msg.dst == dst:
                return i
        return None

    def drop(self, i: int) -> Envelope:
        """Lose envelope ``i``."""
        self.stats.dropped += 1
        return self.inflight.pop(i)

    def duplicate(self, i: int) -> Envelope:
        """Put a second copy of envelope ``i`` on the wire (delivered independently)."""
        self.stats.duplicated += 1
        return self.send(self.inflight[i].msg)

    def drop_where(self, node: int) -> int:
        """Lose every envelope from or to ``node``; returns how many."""
        keep = [e for e in self.inflight if node not in (e.msg.src, e.msg.dst)]
        lost = len(self.inflight) - len(keep)
        self.inflight = keep
        self.stats.dropped += lost
        return lost

    # ------------------------------------------------------------------ partitions
    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut both directions between every pair of distinct groups (adds to existing
        cuts). Nodes in no group keep their links."""
        gs = [sorted(set(g)) for g in groups]
        for a, ga in enumerate(gs):
            for gb in gs[a + 1 :]:
                for x in ga:
                    for y in gb:
                        if x != y:
                            self.cut.add((x, y))
                            self.cut.add((y, x))

    def cut_one_way(self, src: int, dst: int) -> None:
        """Messages from ``src`` to ``dst`` are lost; ``dst`` -> ``src`` still works."""
        if src != dst:
            self.cut.add((src, dst))

    def isolate(self, node: int, others: Iterable[int]) -> None:
        self.partition([[node], [o for o in others if o != node]])

    def stall_node(self, node: int, others: Iterable[int]) -> None:
        """Every link from and to ``node`` holds its envelopes until released."""
        for o in others:
            if o != node:
                self.stalled.add((node, o))
                self.stalled.add((o, node))

    def release(self, *, src: int | None = None, dst: int | None = None) -> int:
        """Let through what waits now on the stalled links from ``src`` (or to ``dst``);
        the links stay stalled. Returns how many envelopes were let through."""
        n = 0
        for i, env in enumerate(self.inflight):
            if self.waits(i) and (env.msg.src == src or env.msg.dst == dst):
                self.released.add(env.seq)
                n += 1
        return n

    def waits(self, i: int) -> bool:
        """Is envelope ``i`` held by a stalled link?"""
        env = self.inflight[i]
        return (env.msg.src, env.msg.dst) in self.stalled and env.seq not in self.released

    def heal(self) -> None:
        """Restore every cut and release every stalled link."""
        self.cut.clear()
        self.stalled.clear()
        self.released.clear()

    def connected(self, src: int, dst: int) -> bool:
        return (src, dst) not in self.cut

    def describe_cuts(self) -> str:
        if not self.cut:
            return "none"
        return " ".join(f"{s}->{d}" for s, d in sorted(self.cut))

    def describe_stalls(self) -> str:
        return " ".join(f"{s}->{d}" for s, d in sorted(self.stalled)) or "none"
