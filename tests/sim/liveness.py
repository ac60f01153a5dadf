"""Liveness after healing: a leader emerges and a new proposal commits everywhere in time.

``converge`` heals every cut, restarts every crashed member, stops nodes outside the
membership (an operator shuts removed members down, once every member has applied the
change), then runs *rounds*: each round
ticks every live node once and then pumps the cluster until it is quiet (every Ready
fully processed, every in-flight message delivered, in random order, none lost). Once a
leader exists it proposes one entry; the cluster has converged when every live member of
the leader's configuration has applied that entry.

It also requires that by then every ReadIndex request still outstanding on a running
node has been answered or dropped (the core promises one or the other).

The bound: ``BOUND_ELECTION_TIMEOUTS * T`` rounds (20 T), T = ``election_ticks``. Why it
is enough: with the election timeout randomized in [T, 2T) ticks, a node that hears from
no leader campaigns within 2T ticks; pre-vote, vote and the first append each take one
round (delivery is instant), so one election plus a commit needs about 2T + 3 ticks. A
restarted node refuses votes for its first T ticks, a stale leader still holding its
check-quorum lease delays others by at most 2T more, a leadership transfer in flight
aborts after T, and a split vote (or, without pre-vote, a node with a stale log that
keeps campaigning) costs one more timeout per retry, each retry redrawing the timeout.
20 T leaves room for several such retries; the runner reports the largest number of
ticks ever needed (so far at most 19 T, without pre-vote; 8 T with it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kvraft.core.types import ConfState
from tests.sim.cluster import Cluster, SimNode

BOUND_ELECTION_TIMEOUTS = 20
"""Converge within this many election timeouts (``election_ticks``) of ticks."""
MAX_PUMP_PASSES = 200
"""A quiet cluster stops exchanging messages; more passes than this is a message storm."""


class LivenessFailure(AssertionError):
    """The healed cluster did not elect a leader and commit a proposal within the bound."""


@dataclass(frozen=True, slots=True)
class Converged:
    ticks: int
    """Rounds (ticks of every node) it took."""
    leader: int
    index: int
    """Index of the proposal every live member applied."""


def pump(cluster: Cluster, rng: random.Random) -> None:
    """Process every Ready and deliver every message (but those a stalled link holds)
    until nothing moves (no losses)."""
    for _ in range(MAX_PUMP_PASSES):
        moved = False
        for n in cluster.live():
            if cluster.drain(n.id):
                moved = True
            cluster.observe()
        batch = len(cluster.net.inflight)
        for _ in range(batch):
            net = cluster.net
            if not net.stalled:
                what = cluster.deliver(rng.randrange(len(net.inflight)))
            else:
                ready = [i for i in range(len(net.inflight)) if not net.waits(i)]
                if not ready:
                    break
                what = cluster.deliver(ready[rng.randrange(len(ready))])
            cluster.log(f"  deliver {what}")
            cluster.observe()
            moved = True
        if not moved:
            return
    raise LivenessFailure(f"still busy after {MAX_PUMP_PASSES} passes: {cluster.summary()}")


def _leader(cluster: Cluster) -> SimNode | None:
    best: SimNode | None = None
    for n in cluster.leaders():
        assert n.raw is not None
        if best is None or (best.raw is not None and n.raw.term > best.raw.term):
            best = n
    return best


def _members_only(cluster: Cluster, conf: ConfState) -> None:
    """Restart down members of ``conf``; stop running non-members once every member has
    applied ``conf`` (the operator's rule: a member that has not applied the change may
    still need the removed node's vote, and stopping it then loses the quorum for good)."""
    members = conf.all_nodes()
    settled = all(
        cluster.nodes[m].disk.conf_state == conf for m in members if m in cluster.nodes
    )
    for n in cluster.nodes.values():
        if n.id in members and not n.alive:
            cluster.log(f"  converge: restart member {n.id}: {cluster.restart(n.id)}")
        elif n.id not in members and n.alive and settled:
            cluster.log(f"  converge: stop non-member {n.id}: {cluster.crash(n.id)}")


def converge(cluster: Cluster, rng: random.Random) -> Converged:
    """Heal, then require a leader and a committed proposal on every live member within
    ``BOUND_ELECTION_TIMEOUTS * election_ticks`` ticks. Raises LivenessFailure."""
    bound = BOUND_ELECTION_TIMEOUTS * cluster.opts.election_ticks
    cluster.log(f"  converge: {cluster.heal()}")
    latest = max(cluster.nodes.values(), key=lambda n: len(n.disk.applied))
    _members_only(cluster, latest.disk.conf_state)
    cluster.observe()
    proposal: tuple[int, int, int, bytes] | None = None  # (leader, term, index, data)
    for t in range(1, bound + 1):
        cluster.tick_all()
        cluster.observe()
        pump(cluster, rng)
        leader = _leader(cluster)
        if leader is None or leader.raw is None:
            continue
        raw = leader.raw
        members = raw.conf_state.all_nodes()
        _members_only(cluster, raw.conf_state)
        if proposal is None or proposal[:2] != (leader.id, raw.term):
            data = f"live{t}@{leader.id}".encode()
            what, index = cluster.propose(leader.id, data)
            cluster.log(f"  converge tick {t}: leader {leader.id}: {what}")
            if index is not None:
                proposal = (leader.id, raw.term, index, data)
            continue
        index, data = proposal[2], proposal[3]
        if all(_has_applied(n, index, data) for n in cluster.live() if n.id in members):
            cluster.log(f"  converge: done in {t} ticks: {cluster.summary()}")
            if cluster.reads.pending:  # every read is answered or dropped by now
                raise LivenessFailure(
                    f"reads neither answered nor dropped after healing: "
                    f"{sorted(cluster.reads.pending.items())} (request: (node, index))"
                )
            return Converged(t, leader.id, index)
    raise LivenessFailure(
        f"no leader with a proposal applied on every live member within {bound} ticks "
        f"after healing: {cluster.summary()}"
    )


def _has_applied(n: SimNode, index: int, data: bytes) -> bool:
    applied = n.disk.applied
    return len(applied) >= index and applied[index - 1].data == data
