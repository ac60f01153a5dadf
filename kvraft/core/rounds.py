"""The leader's heartbeat rounds: their ids and the ticks they were sent at.

Every heartbeat broadcast is a round with an id (``Heartbeat.context``, echoed in the
``HeartbeatResponse``) that increases and is never reused while this core lives. An
answer echoing round ``r`` in our term proves that the follower heard from us at or
after the tick at which ``r`` was sent, however late the answer itself arrives. That
send tick, not the answer's arrival, is what a lease may be measured from (raft.py);
ReadIndex batches use the ids only (an answer to any round sent after a read arrived
confirms it, readindex.py).

Send ticks are kept for the rounds of the last ``keep_ticks`` ticks only (one entry per
tick, however many rounds it sent), so memory is bounded by the lease length; an answer
to an older round proves nothing a lease could still use.
"""

from __future__ import annotations

from collections import deque


class HeartbeatRounds:
    """Round ids and send ticks of a leader (forgotten at every role or term change)."""

    def __init__(self, keep_ticks: int) -> None:
        self.keep_ticks = keep_ticks  # Invariant: >= 0; send ticks older than this are dropped.
        self.last = 0  # Invariant: id of the newest round started by this core (0: none).
        # (first round sent at tick t, t) for recent ticks t; both strictly increasing,
        # at most keep_ticks + 1 entries, empty unless leader.
        self._ticks: deque[tuple[int, int]] = deque()

    def start(self, now: int) -> int:
        """Start a round at tick ``now`` (never earlier than a previous one); returns its
        id, > every id returned before."""
        self.last += 1
        ticks = self._ticks
        while ticks and ticks[0][1] <= now - self.keep_ticks:
            ticks.popleft()
        if not ticks or ticks[-1][1] != now:
            assert not ticks or ticks[-1][1] < now, "heartbeat rounds out of tick order"
            ticks.append((self.last, now))
        return self.last

    def sent_at(self, round_id: int) -> int | None:
        """The tick round ``round_id`` was sent at; None if it is not a round of this
        leadership or too old to be remembered."""
        if not 0 < round_id <= self.last:
            return None
        for first, tick in reversed(self._ticks):
            if first <= round_id:
                return tick
        return None

    def forget(self) -> None:
        """Leadership (or the term) changed: no round sent so far proves anything."""
        self._ticks.clear()
