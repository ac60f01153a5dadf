"""Applies at low load, held back briefly and written in batches (followers; a leader too
for entries whose proposers it already answered).

Nobody waits for a follower's applies: every write was answered by the leader, and the
follower's own readers use STALE reads, which may lag anyway. Applying each committed
entry in a write of its own costs a follower an LMDB transaction (two fsyncs) and two
I/O-thread hand-offs per entry at low load, on a disk and CPUs it shares with the
leader's critical path. So a follower (or learner) holds small batches of committed
entries back, for up to ``delay_s`` seconds and fewer than ``max_entries`` entries, and
then applies them in one write. Under load its Readys carry many entries each and are
applied as they come (after the acks): holding them would only put a larger apply in
front of a later ack.

A leader holds only entries whose proposers have all been answered from predicted
results (predictions.py): then nobody waits for their apply either, and the leader's next
log write takes them into its transaction (persist.py), one fsync pair per put instead of
two at low load.

The driver applies what is held at once, in order and ahead of anything newer, whenever
the state must be current: a committed membership change, a role other than follower or
learner (or a leader, for entries some proposer still waits for), a read waiting for its
index, a Ready that brings enough entries. A snapshot
installed from the leader supersedes what is held (it covers every committed entry).
Held entries are durable in the log: after a crash they are replayed like any entry
applied but not yet committed to the state. The driver task alone uses this object.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from kvraft.core.types import ConfState, Entry, Ready, Role


class HeldApplies:
    """Committed entries not yet applied, and when they are due."""

    def __init__(self, delay_s: float, max_entries: int, wake: Callable[[], None]) -> None:
        self.delay_s = delay_s  # <= 0: never hold
        self._max = max_entries  # hold fewer than this many entries
        self._wake = wake  # wakes the driver task once the delay is over
        self.entries: list[Entry] = []  # contiguous, from the state's applied index + 1
        self.due = False  # True: apply what is held at the next chance
        self._timer: asyncio.TimerHandle | None = None  # pending expiry, while holding

    def may_hold(self, rd: Ready, role: Role, cc_results: Mapping[int, ConfState],
                 reads_pending: int, all_answered: bool) -> bool:
        """May ``rd.committed_entries`` join what is held instead of being applied now?
        ``all_answered``: every one of them has had its proposer answered already."""
        return (
            self.delay_s > 0
            and not self.due
            and len(self.entries) + len(rd.committed_entries) < self._max
            and (role in (Role.FOLLOWER, Role.LEARNER) or (role == Role.LEADER and all_answered))
            and rd.snapshot is None
            and not cc_results
            and reads_pending == 0
        )

    def hold(self, committed: Sequence[Entry]) -> None:
        """Keep ``committed`` (following what is held) for a later write."""
        self.entries.extend(committed)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay_s, self._expire)

    def take(self, committed: Sequence[Entry] = ()) -> list[Entry]:
        """Everything held, then ``committed``; nothing is held afterwards."""
        out = self.entries + list(committed) if self.entries else list(committed)
        self.entries = []
        self.due = False
        self.cancel()
        return out

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.entries:
            self.due = True
            self._wake()
