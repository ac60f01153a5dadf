"""The leader's view of one follower: match/next indexes, flow-control state, inflights.

States (as in etcd-raft):

- PROBE: the leader does not know where the follower's log matches. It sends at most
  one AppendEntries per heartbeat interval and waits for the answer (``probe_sent``).
- REPLICATE: the logs match up to ``match``; the leader streams entries optimistically,
  advancing ``next`` as it sends, with at most ``max_inflight_msgs`` messages and
  ``max_inflight_bytes`` bytes unacknowledged (``Inflights``).
- SNAPSHOT: the follower needs a snapshot at ``pending_snapshot``; nothing else is sent
  until the transport reports the outcome or the follower's ack shows it caught up.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """A FIFO window of sent-but-unacknowledged AppendEntries (last index, size in bytes)."""

    __slots__ = ("_queue", "_bytes", "max_count", "max_bytes")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self._queue: deque[tuple[int, int]] = deque()  # Invariant: last indexes increasing.
        self._bytes = 0  # Invariant: sum of sizes in _queue.
        self.max_count = max_count  # Invariant: >= 1.
        self.max_bytes = max_bytes  # Invariant: >= 1.

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def bytes(self) -> int:
        return self._bytes

    def full(self) -> bool:
        return len(self._queue) >= self.max_count or self._bytes >= self.max_bytes

    def add(self, last_index: int, size: int) -> None:
        assert not self._queue or last_index > self._queue[-1][0], "inflights out of order"
        self._queue.append((last_index, size))
        self._bytes += size

    def free_le(self, index: int) -> None:
        """Forget every message whose last index is <= ``index`` (acknowledged)."""
        q = self._queue
        while q and q[0][0] <= index:
            self._bytes -= q.popleft()[1]

    def free_first(self) -> None:
        if self._queue:
            self._bytes -= self._queue.popleft()[1]

    def reset(self) -> None:
        self._queue.clear()
        self._bytes = 0


class Progress:
    """Replication state of one peer, kept by the leader (and for itself)."""

    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "pending_snapshot",
        "inflights",
        "sent_commit",
        "last_active",
        "acked_round",
        "heard_since",
    )

    def __init__(self, next_index: int, max_inflight: int, max_inflight_bytes: int) -> None:
        self.match = 0  # Invariant: the follower's log equals ours up to match; match < next.
        self.next = next_index  # Invariant: next index to send; match + 1 <= next.
        self.state = ProgressState.PROBE  # Invariant: see module docstring.
        self.probe_sent = False  # Invariant: only True in PROBE; pauses sends until an answer.
        self.pending_snapshot = 0  # Invariant: non-zero only in SNAPSHOT (index being sent).
        self.inflights = Inflights(max_inflight, max_inflight_bytes)  # Non-empty only in REPLICATE.
        self.sent_commit = 0  # Invariant: highest commit index sent in an AppendEntries.
        self.last_active = 0  # Invariant: leader tick of the last message heard (check-quorum).
        self.acked_round = 0  # Invariant: newest heartbeat round it answered this term (0: none).
        # Invariant: send tick of a round it answered this term (the newest one still
        # remembered): it heard from the leader at or after this tick (lease).
        self.heard_since = -(1 << 62)

    def __repr__(self) -> str:
        return (
            f"Progress(match={self.match}, next={self.next}, state={self.state.value}, "
            f"inflight={len(self.inflights)})"
        )

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.reset()

    def become_probe(self) -> None:
        """Start probing from just after what is known to match (or the snapshot sent)."""
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged entries up to ``index``. Returns True if match grew."""
        updated = False
        if index > self.match:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append whose prev index was ``rejected``; its log
        matches ours at most up to ``match_hint``. Returns False if the rejection is
        stale (answers a message we no longer care about)."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def on_entries_sent(self, last_index: int, count: int, size: int) -> None:
        """Record an AppendEntries carrying ``count`` entries ending at ``last_index``."""
        if self.state is ProgressState.REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflights.add(last_index, size)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True
        else:
            raise AssertionError(f"sending entries in state {self.state}")

    def is_paused(self) -> bool:
        """True if no AppendEntries may be sent now."""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True
