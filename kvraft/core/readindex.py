"""The leader's queue of ReadIndex requests (Raft dissertation §6.4).

Requests arriving between two heartbeat rounds (rounds.py) form one batch: the next
round that leaves (at the next Ready, or a periodic one if that comes first) gives the
batch its round id and its read index (the commit index when that round leaves, which is
>= the commit index when each request arrived). Once a quorum of voters has answered
that round or any later one, the batch and every older one are confirmed: each of those
voters was still in our term after all of the batch's requests arrived, so no newer
leader can have committed anything by then. An answer to a round sent before a request
arrived never confirms it, and round ids are never reused, so no answer from an earlier
term or leadership can either.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kvraft.core.types import ReadState


@dataclass(slots=True)
class ReadBatch:
    round: int  # Invariant: the heartbeat round sent for it (> 0), after its requests came.
    index: int  # Invariant: the leader's commit index when that round was sent.
    request_ids: list[int]  # Invariant: non-empty.


class ReadIndexQueue:
    """Pending ReadIndex requests of a leader (empty on any other role)."""

    def __init__(self) -> None:
        self.waiting: list[int] = []  # Requests held until the leader commits in its term.
        self.open: list[int] = []  # Requests that arrived after the last round was sent.
        self.sent: deque[ReadBatch] = deque()  # Invariant: rounds strictly increasing.

    def add(self, request_id: int) -> None:
        """Queue a request for the next heartbeat round."""
        self.open.append(request_id)

    def send_open(self, round_id: int, index: int) -> None:
        """Round ``round_id`` (newer than every round given before) is being sent while
        the commit index is ``index``: it carries the open requests, if any."""
        if self.open:
            self.sent.append(ReadBatch(round_id, index, self.open))
            self.open = []

    def confirm(self, round_id: int) -> list[ReadState]:
        """A quorum of voters answered round ``round_id`` or a later one: returns the
        reads of every batch sent in a round <= ``round_id``, oldest first."""
        out: list[ReadState] = []
        while self.sent and self.sent[0].round <= round_id:
            batch = self.sent.popleft()
            out.extend(ReadState(r, batch.index) for r in batch.request_ids)
        return out

    def drop_all(self) -> list[int]:
        """Forget every request (leadership lost); returns their ids."""
        out = list(self.waiting) + self.open
        for batch in self.sent:
            out.extend(batch.request_ids)
        self.waiting = []
        self.open = []
        self.sent.clear()
        return out
