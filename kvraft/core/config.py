"""Configuration of one Raft core (``RawNode``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    """Tunables of a core. Times are counted in ``tick()`` calls.

    The election timeout is drawn uniformly from [election_ticks, 2*election_ticks) each
    time it is reset. Lease reads (``read_index(..., lease=True)``) are measured from when
    the heartbeat a quorum answered was sent, so message delays do not shorten their
    margin; they assume that over one lease the nodes' tick clocks drift apart by less
    than ``election_ticks - lease_ticks - 1`` ticks (one tick is lost to rounding).
    """

    id: int
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_msg: int = 256
    max_bytes_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 64 << 20
    applied: int = 0
    lease_ticks: int | None = None
    max_committed_bytes_per_ready: int = 64 << 20
    """Upper bound on the size of ``Ready.committed_entries`` (at least one entry)."""
    lazy_commit: bool = False
    """Leader: a newer commit index alone does not make an AppendEntries (etcd sends one
    at once). Followers learn it from the next AppendEntries that carries entries, from
    every heartbeat, or once the runtime calls ``RawNode.flush_commit()``. At low load
    this saves a message, its answer and a follower write per commit; followers apply
    one round later. A commit that covers a membership change still goes out at once.
    Safety does not depend on when followers learn the commit index."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.id <= 0:
            raise ValueError(f"id must be a positive integer, got {self.id}")
        if self.heartbeat_ticks < 1:
            raise ValueError(f"heartbeat_ticks must be >= 1, got {self.heartbeat_ticks}")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError(
                f"election_ticks ({self.election_ticks}) must exceed heartbeat_ticks "
                f"({self.heartbeat_ticks})"
            )
        for name in (
            "max_entries_per_msg",
            "max_bytes_per_msg",
            "max_inflight_msgs",
            "max_inflight_bytes",
            "max_committed_bytes_per_ready",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.applied < 0:
            raise ValueError(f"applied must be >= 0, got {self.applied}")
        if self.lease_ticks is not None and not 0 < self.lease_ticks < self.election_ticks:
            raise ValueError(
                f"lease_ticks ({self.lease_ticks}) must be in [1, election_ticks="
                f"{self.election_ticks})"
            )

    def effective_lease_ticks(self) -> int:
        """Lease length in ticks (0 disables lease reads: they fall back to ReadIndex)."""
        if self.lease_ticks is not None:
            return self.lease_ticks
        return max(0, self.election_ticks - 2)
