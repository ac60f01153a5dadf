"""The RawNode contract: Ready/advance protocol, message split, bad input, config."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kvraft.core import Config, RawNode
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    Entry,
    HardState,
    Heartbeat,
    InstallSnapshot,
    RequestVote,
    Role,
    SnapshotMeta,
    VoteResponse,
)
from tests.core.harness import Cluster, MemStore, describe_msg


def test_one_ready_outstanding_at_a_time() -> None:
    c = Cluster(3)
    c[1].campaign()
    rd = c[1].ready()
    with pytest.raises(RuntimeError, match="before advance"):
        c[1].ready()
    with pytest.raises(RuntimeError, match="last ready"):
        c[1].advance(c[2].ready())
    c[1].advance(rd)
    assert not c[1].has_ready()


def test_idle_node_has_no_ready_and_restarts_in_its_persisted_term() -> None:
    store = MemStore([1, 2, 3])
    store.save(entries=[Entry(1, 1), Entry(2, 2)], hard_state=HardState(term=5, vote=3, commit=1))
    node = RawNode(Config(id=2, applied=1), store, random.Random(1))
    assert (node.term, node.vote, node.commit, node.applied) == (5, 3, 1, 1)
    assert node.role is Role.FOLLOWER and node.leader == 0 and node.last_index == 2
    assert not node.has_ready()
    assert node.status() == {
        "id": 2, "term": 5, "vote": 3, "commit": 1, "applied": 1, "leader": 0,
        "role": "follower", "progress": {},
    }


def test_busy_cluster_only_delays_vote_requests_grants_and_append_acks() -> None:
    c = Cluster(5, seed=3)
    kinds: Counter[str] = Counter()
    for round_ in range(200):
        if round_ % 50 == 25:
            c.isolate(c.leader())
        if round_ % 50 == 40:
            c.heal()
        for n in c.leaders():
            c.propose(n, f"r{round_}")
        c.tick()
        for nid in sorted(c.nodes):
            rd = c.process(nid)  # the harness asserts the split on every Ready
            if rd is not None:
                kinds.update(describe_msg(m).split()[1] for m in rd.persisted_messages)
        c.deliver()
    assert set(kinds) == {"Vote", "VoteResp", "AppResp"}, kinds


@pytest.mark.parametrize(
    "msg",
    [
        AppendEntries(9, 1, 1, 0, 0, (Entry(1, 2),), 0),  # entries do not follow prev
        AppendEntries(9, 1, 1, 0, 0, (Entry(2, 1),), 0),  # entry term above message term
        AppendEntries(9, 1, 1, 3, 2, (), 0),  # prev term above message term
        AppendEntries(9, 2, 1, 0, 0, (), 0),  # not addressed to us
        AppendEntries(1, 1, 1, 0, 0, (), 0),  # from ourselves
        AppendResponse(9, 1, 1, -4),
        InstallSnapshot(9, 1, 1, SnapshotMeta(0, 0)),
        RequestVote(0, 1, 3, 0, 0),
    ],
    ids=describe_msg,
)
def test_malformed_messages_are_dropped(msg: object) -> None:
    node = RawNode(Config(id=1), MemStore([1, 2, 3]), random.Random(0))
    node.step(msg)  # type: ignore[arg-type]
    assert node.term == 0 and not node.has_ready()


def test_stale_and_unknown_peer_messages_are_dropped() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    c[1].step(AppendResponse(7, 1, term, 1))  # not a member
    c[1].step(AppendResponse(2, 1, term, 10_000))  # acks beyond our log
    c[1].step(VoteResponse(2, 1, term, True))  # no campaign running
    c[1].step(Heartbeat(3, 1, term, 0))  # a second leader of our term cannot exist
    assert c[1].role is Role.LEADER and c[1].status()["progress"][2]["match"] < 10_000  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": 0}, "id"),
        ({"id": 1, "heartbeat_ticks": 0}, "heartbeat_ticks"),
        ({"id": 1, "election_ticks": 1}, "election_ticks"),
        ({"id": 1, "lease_ticks": 10}, "lease_ticks"),
        ({"id": 1, "max_inflight_msgs": 0}, "max_inflight_msgs"),
    ],
)
def test_bad_config_is_refused_naming_the_field(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RawNode(Config(**kwargs), MemStore([1]), random.Random(0))  # type: ignore[arg-type]


def test_restart_with_applied_below_the_snapshot_is_refused() -> None:
    store = MemStore([1])
    store.save(entries=[Entry(1, k) for k in range(1, 6)], hard_state=HardState(1, 1, 5))
    store.compact(SnapshotMeta(4, 1))
    with pytest.raises(ValueError, match="restore the state machine"):
        RawNode(Config(id=1, applied=2), store, random.Random(0))
