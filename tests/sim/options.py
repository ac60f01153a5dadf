"""The knobs of one simulated cluster (``SimOptions``), chosen per schedule.

``Cluster`` (cluster.py) builds its nodes' core ``Config`` from them and reads the
network and clock modes; schedule.py draws them from the schedule's seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvraft.core import Config


@dataclass(frozen=True, slots=True)
class SimOptions:
    """Knobs of one simulated cluster (chosen per schedule)."""

    nodes: int = 3
    """Initial voters 1..nodes; node nodes+1 is a spare that starts outside the cluster."""
    election_ticks: int = 10
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_msg: int = 256
    max_inflight_msgs: int = 256
    max_bytes_per_msg: int = 1 << 20
    max_delay_ticks: int | None = None
    """If set, the network delivers every message within this many global ticks of its
    sending (before time moves on) unless it is dropped or cut: a bounded-delay network
    without clock drift."""
    lazy_commit: bool = False
    """Leaders hold a new commit index back (core Config.lazy_commit); like the runtime's
    timer, every global tick first makes them flush it (``tick_all``)."""
    no_drift: bool = False
    """Every tick is a tick of all live nodes (no clock drift), however long messages
    take: the assumption lease reads rest on, since a lease runs from when the heartbeat
    a quorum answered was sent. See ``lease_reads``."""

    @property
    def lease_reads(self) -> bool:
        """Are lease reads issued (otherwise read_index(lease=True) is sent as a plain
        ReadIndex)? Only without clock drift (a bounded-delay network has none)."""
        return self.check_quorum and (self.no_drift or self.max_delay_ticks is not None)

    def config(self, node: int, applied: int) -> Config:
        return Config(
            id=node,
            election_ticks=self.election_ticks,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            max_entries_per_msg=self.max_entries_per_msg,
            max_inflight_msgs=self.max_inflight_msgs,
            max_bytes_per_msg=self.max_bytes_per_msg,
            applied=applied,
            lazy_commit=self.lazy_commit,
        )
