"""Quorum arithmetic: majority and joint (two-majority) configurations.

Pure functions over a set of voter ids plus a per-voter value. A decision needs a
majority of ``incoming``, and, in a joint configuration, also a majority of ``outgoing``
(an empty ``outgoing`` means "not joint" and always agrees). Learners never appear here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


class VoteResult(enum.Enum):
    PENDING = 0
    """Not enough answers yet to decide."""
    WON = 1
    """A quorum granted."""
    LOST = 2
    """A quorum can no longer be reached."""


def majority_index(voters: Iterable[int], value_of: Callable[[int], int]) -> int:
    """The largest value ``v`` such that a majority of ``voters`` has a value >= ``v``.

    Used for the commit index (value = match index) and for leases (value = tick of the
    last acknowledgement). An empty voter set imposes no constraint: it returns a value
    larger than any real one, so ``min`` with another config picks the other.
    """
    values = sorted((value_of(v) for v in voters), reverse=True)
    if not values:
        return 1 << 62
    return values[len(values) // 2]


def majority_vote(voters: frozenset[int], votes: Mapping[int, bool]) -> VoteResult:
    """Tally ``votes`` (id -> granted) of ``voters``; ids outside ``voters`` are ignored."""
    if not voters:
        return VoteResult.WON
    need = len(voters) // 2 + 1
    granted = rejected = 0
    for v in voters:
        answer = votes.get(v)
        if answer is True:
            granted += 1
        elif answer is False:
            rejected += 1
    if granted >= need:
        return VoteResult.WON
    if rejected > len(voters) - need:
        return VoteResult.LOST
    return VoteResult.PENDING


@dataclass(frozen=True, slots=True)
class JointConfig:
    """The voters of a configuration; ``outgoing`` is non-empty only while joint."""

    incoming: frozenset[int]  # Invariant: non-empty in any usable configuration.
    outgoing: frozenset[int] = frozenset()  # Invariant: empty unless in joint consensus.

    def ids(self) -> frozenset[int]:
        return self.incoming | self.outgoing

    def is_singleton(self, node_id: int) -> bool:
        """True if ``node_id`` alone forms every quorum (a one-voter cluster)."""
        return self.incoming == {node_id} and self.outgoing in (frozenset(), {node_id})

    def committed_index(self, value_of: Callable[[int], int]) -> int:
        """The largest value acknowledged by a quorum of every half of the config."""
        return min(majority_index(self.incoming, value_of), majority_index(self.outgoing, value_of))

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        a = majority_vote(self.incoming, votes)
        b = majority_vote(self.outgoing, votes) if self.outgoing else VoteResult.WON
        if a is VoteResult.LOST or b is VoteResult.LOST:
            return VoteResult.LOST
        if a is VoteResult.WON and b is VoteResult.WON:
            return VoteResult.WON
        return VoteResult.PENDING

    def has_quorum(self, ids: Iterable[int]) -> bool:
        """True if the ids in ``ids`` form a quorum."""
        present = dict.fromkeys(ids, True)
        return self.vote_result(present) is VoteResult.WON
