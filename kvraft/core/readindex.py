"""The leader's queue of ReadIndex requests (Raft dissertation §6.4).

Requests arriving between two Readys form one batch that shares one heartbeat round:
the batch gets a context number (never reused while this core lives, so no response
from an earlier term or round can confirm it) and its read index (the commit index when
its heartbeats leave, which is >= the commit index when each request arrived). When a
quorum of voters has answered a batch's context, that batch and every older one are
confirmed: leadership held after all of them arrived.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kvraft.core.quorum import JointConfig
from kvraft.core.types import ReadState


@dataclass(slots=True)
class ReadBatch:
    context: int  # Invariant: unique among all batches of this core, > 0.
    request_ids: list[int]  # Invariant: non-empty.
    index: int = 0  # Invariant: set when the batch's heartbeats are sent.
    acks: set[int] = field(default_factory=set)  # Voters (and self) that confirmed.


class ReadIndexQueue:
    """Pending ReadIndex requests of a leader (empty on any other role)."""

    def __init__(self) -> None:
        self._next_context = 1  # Invariant: greater than every context handed out.
        self.waiting: list[int] = []  # Requests held until the leader commits in its term.
        self.open: ReadBatch | None = None  # Batch whose heartbeats are not sent yet.
        self.sent: deque[ReadBatch] = deque()  # Invariant: ordered by context.

    def add(self, request_id: int) -> None:
        """Queue a request into the open batch (opening one if needed)."""
        if self.open is None:
            self.open = ReadBatch(self._next_context, [])
            self._next_context += 1
        self.open.request_ids.append(request_id)

    def send_open(self, index: int, self_id: int) -> ReadBatch | None:
        """Close the open batch at read index ``index`` for sending; returns it."""
        batch = self.open
        if batch is None:
            return None
        self.open = None
        batch.index = index
        batch.acks.add(self_id)
        self.sent.append(batch)
        return batch

    def last_context(self) -> int:
        """Context of the newest sent batch, to piggyback on heartbeats (0 if none)."""
        return self.sent[-1].context if self.sent else 0

    def ack(self, context: int, voter: int, voters: JointConfig) -> list[ReadState]:
        """``voter`` answered heartbeat ``context``; returns the reads now confirmed."""
        hit = None
        for batch in self.sent:
            if batch.context == context:
                hit = batch
                break
        if hit is None:
            return []
        hit.acks.add(voter)
        if not voters.has_quorum(hit.acks):
            return []
        out: list[ReadState] = []
        while self.sent:
            batch = self.sent.popleft()
            out.extend(ReadState(r, batch.index) for r in batch.request_ids)
            if batch is hit:
                break
        return out

    def recheck(self, voters: JointConfig) -> list[ReadState]:
        """After a configuration change: confirm the newest batch a quorum already acked."""
        for batch in reversed(self.sent):
            if voters.has_quorum(batch.acks):
                return self.ack(batch.context, next(iter(batch.acks)), voters)
        return []

    def drop_all(self) -> list[int]:
        """Forget every request (leadership lost); returns their ids."""
        out = list(self.waiting)
        if self.open is not None:
            out.extend(self.open.request_ids)
        for batch in self.sent:
            out.extend(batch.request_ids)
        self.waiting = []
        self.open = None
        self.sent.clear()
        return out
