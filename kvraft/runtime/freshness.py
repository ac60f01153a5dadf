"""How fresh is this node's state? Evidence for bounded-staleness (STALE + max_staleness) reads.

The node's state is "current as of time t" when, at time t, a leader's commit index C was
known to this node and the node has since applied everything up to C. Evidence comes
from the driver:

- a follower hears commit indexes from its leader (AppendEntries/Heartbeat of the
  current term): ``heard(commit, now)``;
- a leader knows its own commit index, but only as of the last time a quorum of voters
  acknowledged it as leader: ``heard(commit, quorum_time)``.

Times come from the caller (a monotonic clock); this module reads no clock itself.
"""

from __future__ import annotations

from collections import deque


class Freshness:
    """Tracks (commit index, time) evidence and answers "current as of when?"."""

    def __init__(self, max_evidence: int = 1024) -> None:
        self._max = max_evidence  # bound on pending evidence kept (oldest dropped first)
        # Evidence not yet covered by applied: commit indexes strictly increasing from
        # left to right, times non-decreasing.
        self._pending: deque[tuple[int, float]] = deque()
        self._current_as_of: float | None = None  # latest time the state was known current
        self._applied = 0  # highest applied index reported
        self._max_heard = 0  # highest commit index heard; evidence never claims less

    def heard(self, commit: int, at: float) -> None:
        """At time ``at`` the leader's commit index was at least ``commit``.

        Commit indexes never go back, so the evidence is raised to the highest commit
        heard so far (a heartbeat may carry a lower one)."""
        commit = max(commit, self._max_heard)
        self._max_heard = commit
        if commit <= self._applied:
            self._mark(at)
            return
        while self._pending and self._pending[-1][0] >= commit:
            self._pending.pop()  # same commit, newer time: the newer evidence is better
        self._pending.append((commit, at))
        if len(self._pending) > self._max:
            self._pending.popleft()

    def applied(self, index: int) -> None:
        """The node has applied everything up to ``index``."""
        self._applied = max(self._applied, index)
        while self._pending and self._pending[0][0] <= self._applied:
            self._mark(self._pending.popleft()[1])

    def current_as_of(self) -> float | None:
        """The latest time the state was provably current, or None if never."""
        return self._current_as_of

    def reset(self) -> None:
        """Forget all evidence (e.g. after a snapshot restore)."""
        self._pending.clear()
        self._current_as_of = None
        self._max_heard = 0

    def _mark(self, at: float) -> None:
        if self._current_as_of is None or at > self._current_as_of:
            self._current_as_of = at


def quorum_time(
    self_id: int, voters: frozenset[int], last_ack: dict[int, float], now: float
) -> float | None:
    """The latest time t such that a majority of ``voters`` (the node itself counting as
    heard at ``now``) acknowledged this leader at or after t; None if no majority has."""
    if not voters:
        return None
    times = sorted(
        (now if v == self_id else last_ack.get(v, float("-inf")) for v in voters), reverse=True
    )
    t = times[len(voters) // 2]
    return None if t == float("-inf") else t
