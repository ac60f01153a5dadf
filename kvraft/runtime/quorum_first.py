"""Quorum-first replication: a leader sends its AppendEntries at once only to the
followers that complete a quorum fastest, and to the others in batches a little later.

Why: on a small box every node competes for the same few CPUs. At one write in flight a
3-node leader waits for ONE follower's write and ack, while the second follower's
receive, write and ack (as much CPU again, most of it per message, not per entry) run
in the same instant on the same cores. Measured on a 2-core box, one put at a time:
p50 4.34 -> 2.92 ms and 6.0 -> 3.7 ms of server CPU per put with a 10 ms batch; at 64
in flight 3,930 -> 4,224 puts/s (docs/performance.md).

What: the leader keeps a *fast set* of followers, as many as make a quorum with itself
(1 of 2 followers, 2 of 4), filled by the first followers to answer an AppendEntries.
AppendEntries to any other follower (voter or learner) are held here and sent

- ``delay_ms`` after the oldest of them was held (``expire``), all together, so the
  transport carries them in one frame and the follower writes them with one fsync; if
  by then entries held for half that time or more have not committed, the fast set was
  not fast: it is emptied, the next AppendEntries go to every follower at once and the
  first to answer form it again;
- at once, before any other message to the same follower (heartbeats, snapshots,
  TimeoutNow, votes), so that every follower receives its messages in the order the
  core made them; the same check of the fast set applies (with the default
  ``quorum_first_ms`` equal to the heartbeat interval, most batches leave this way).

What it does not change: when a write is durable or acknowledged (the core commits on
a quorum of durable acks, as before), nor any message's content. A held AppendEntries
is a message on a slower network, which Raft tolerates by design; the core's progress
tracking and flow control see nothing different. A follower outside the fast set is at
most ``delay_ms`` behind (its STALE reads that much staler); if a fast follower stops
answering, the writes of the next ``delay_ms`` wait for the others. Nothing is held by
a node that is not the leader, with fewer than 3 voters, or in a joint configuration.

Used only by the driver task (driver.py); ``send`` is the transport's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from kvraft.core.types import AppendEntries, AppendResponse, ConfState, Message
from kvraft.runtime.base import DriverStats


class QuorumFirst:
    """Which followers get a leader's AppendEntries now, and what waits for the others."""

    def __init__(
        self, node_id: int, delay_ms: int, send: Callable[[Sequence[Message]], None],
        submit: Callable[[Callable[[], None]], None], commit: Callable[[], int],
        stats: DriverStats,
    ) -> None:
        self._id = node_id
        self._delay = delay_ms / 1000  # 0: hold nothing
        self._send = send  # hands messages to the transport
        self._submit = submit  # runs work on the driver task
        self._commit = commit  # the leader's commit index (read on the driver task)
        self._need = 0  # followers in a full fast set (quorum - 1); 0: hold nothing
        self._voters: frozenset[int] = frozenset()  # followers that may be fast
        self.fast: set[int] = set()  # followers that get AppendEntries at once
        self._held: list[AppendEntries] = []  # in the order the core made them
        self._held_to: set[int] = set()  # followers with something in _held
        self._due: list[tuple[float, int]] = []  # (loop time + delay/2, last entry index)
        self._timer: asyncio.TimerHandle | None = None  # expire(), while something is held
        self._stats = stats  # appends_held, fast_set_misses

    def configure(self, leader: bool, conf: ConfState) -> None:
        """The role or the membership changed: how many make the fast set, who is in it."""
        voters = conf.voters
        usable = leader and self._delay > 0 and not conf.voters_outgoing and len(voters) >= 3
        need = len(voters) // 2 if usable else 0  # a quorum, less the leader
        self._voters = voters - {self._id}
        if need != self._need or not self.fast <= self._voters:
            self.fast.clear()
        self._need = need
        if not need:
            self.flush()

    def route(self, messages: Sequence[Message]) -> list[Message]:
        """Of a Ready's ``messages``, hold what waits; return what goes now, in order."""
        if not self._need and not self._held:
            return list(messages)
        now: list[Message] = []
        for m in messages:
            dst = m.dst
            if (isinstance(m, AppendEntries) and self._need
                    and len(self.fast) == self._need and dst not in self.fast):
                self._hold(m)
                continue
            if dst in self._held_to:  # what was held for it goes first
                self._check_fast()
                now.extend(self._take(dst))
            now.append(m)
        return now

    def acked(self, m: AppendResponse) -> None:
        """A follower accepted AppendEntries (current term): the first ones are fast."""
        if (self._need and not m.reject and len(self.fast) < self._need
                and m.src in self._voters):
            self.fast.add(m.src)

    def expire(self) -> None:
        """``delay_ms`` passed since the oldest held message: send all that is held."""
        self._timer = None
        self._check_fast()
        self.flush()

    def _check_fast(self) -> None:
        """Held appends are about to leave (batch timer, or another message to their
        follower goes first: a heartbeat every tick): if entries held for half the delay
        or more have not committed, the fast set did not commit them in time -- empty it,
        so that the next appends race to everybody. Checked at every such send: with
        heartbeats more frequent than the batch timer, the timer may never fire."""
        now, commit = asyncio.get_running_loop().time(), self._commit()
        if self.fast and any(due <= now and index > commit for due, index in self._due):
            self.fast.clear()
            self._stats.fast_set_misses += 1

    def flush(self) -> None:
        """Send everything held, in order."""
        held = self._held
        self.cancel()
        if held:
            self._send(held)

    def cancel(self) -> None:
        """Forget what is held and its timer (the driver stops: as a network would)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = []
        self._held_to.clear()
        self._due.clear()

    def _hold(self, m: AppendEntries) -> None:
        loop = asyncio.get_running_loop()
        self._held.append(m)
        self._held_to.add(m.dst)
        if m.entries:
            self._due.append((loop.time() + self._delay / 2, m.entries[-1].index))
        self._stats.appends_held += 1
        if self._timer is None:
            self._timer = loop.call_later(self._delay, self._submit, self.expire)

    def _take(self, dst: int) -> list[AppendEntries]:
        """Remove and return what is held for ``dst``."""
        mine = [m for m in self._held if m.dst == dst]
        rest = [m for m in self._held if m.dst != dst]
        if not rest:
            self.cancel()
        else:
            self._held = rest
            self._held_to.discard(dst)
        return mine
