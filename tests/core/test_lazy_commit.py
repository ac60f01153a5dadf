"""lazy_commit: a leader holds a new commit index back until it has something else to
send (entries, a heartbeat) or the runtime calls flush_commit(); followers still learn
every commit, and nothing else about replication changes."""

from __future__ import annotations

from kvraft.core.types import AppendEntries, ConfChange, ConfChangeType, Heartbeat, Message
from tests.core.harness import Cluster


def appends(
    msgs: list[Message] | tuple[Message, ...], dst: int | None = None
) -> list[AppendEntries]:
    return [m for m in msgs if isinstance(m, AppendEntries) and dst in (None, m.dst)]


def commit_round(c: Cluster, payload: str) -> None:
    """Propose on leader 1 and run until it has applied the entry; the followers' acks
    are delivered, anything the leader sends afterwards stays in the network."""
    c.propose(1, payload)
    c.process(1)  # leader persists and sends the entries
    c.deliver()  # entries reach the followers
    c.process(2)
    c.process(3)  # followers persist and ack
    c.deliver()  # acks reach the leader
    c.process(1)  # leader commits and applies


def test_eager_leader_sends_the_new_commit_index_at_once() -> None:
    c = Cluster(3)
    c.elect(1)
    commit_round(c, "a")
    assert c.applied_data(1) == ["a"]
    told = appends(c.network)
    assert sorted(m.dst for m in told) == [2, 3], "an empty AppendEntries per follower"
    assert all(not m.entries and m.commit == c[1].commit for m in told)


def test_lazy_leader_holds_the_commit_index_back() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    commit_round(c, "a")
    assert c.applied_data(1) == ["a"], "the leader commits and applies as before"
    assert appends(c.network) == [], "no message only to carry the commit index"
    assert c[1].commit_unsent()
    assert c.applied_data(2) == [] and c.applied_data(3) == []


def test_lazy_commit_rides_on_the_next_entries() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    commit_round(c, "a")
    c.propose(1, "b")
    c.process(1)
    told = appends(c.network)
    assert [len(m.entries) for m in told] == [1, 1]
    assert all(m.commit == c[1].commit for m in told), "entries b carry the commit of a"
    c.deliver()
    rd = c.process(2)
    assert rd is not None
    assert [e.data for e in rd.entries] == [b"b"]
    assert [e.data for e in rd.committed_entries] == [b"a"], (
        "the follower writes b and applies a in the same Ready"
    )


def test_commit_unsent_upto_asks_about_an_older_commit_index() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    commit_round(c, "a")
    first = c[1].commit
    assert c[1].commit_unsent(first)
    commit_round(c, "b")  # b's entries carried the commit index of a to both followers
    assert c[1].commit > first
    assert c[1].commit_unsent(), "the commit index of b was sent to nobody"
    assert not c[1].commit_unsent(first), "every follower was sent the commit index of a"
    assert not c[2].commit_unsent(first), "a follower has nothing to send"


def test_flush_commit_tells_only_the_followers_that_lack_it() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    commit_round(c, "a")
    c[1].flush_commit()
    assert c[1].has_ready()
    rd = c.process(1)
    assert rd is not None
    told = appends(rd.messages)
    assert sorted(m.dst for m in told) == [2, 3]
    assert all(not m.entries and m.commit == c[1].commit for m in told)
    assert not c[1].commit_unsent()
    c.stabilize()
    assert c.applied_data(2) == ["a"] and c.applied_data(3) == ["a"]
    c[1].flush_commit()  # nothing left to tell: no message
    assert c.process(1) is None or appends(c.network) == []


def test_heartbeats_carry_the_commit_index_without_flush() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    commit_round(c, "a")
    c.tick([1])  # heartbeat_ticks=1: a heartbeat round
    c.process(1)
    beats = [m for m in c.network if isinstance(m, Heartbeat)]
    assert sorted(m.dst for m in beats) == [2, 3]
    assert all(m.commit == c[1].commit for m in beats)
    c.stabilize()
    assert c.applied_data(2) == ["a"] and c.applied_data(3) == ["a"]


def test_flush_commit_is_a_no_op_on_a_follower() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    c.stabilize()
    c[2].flush_commit()
    assert not c[2].commit_unsent()
    assert not c[2].has_ready()


def test_lazy_cluster_converges_under_load() -> None:
    c = Cluster(3, lazy_commit=True)
    c.elect(1)
    for k in range(20):
        c.propose(1, f"v{k}")
        c.round()
    c.run(2)  # heartbeats tell the last commit index
    want = [f"v{k}" for k in range(20)]
    assert c.applied_data(1) == want
    assert c.applied_data(2) == want and c.applied_data(3) == want


def test_a_committed_membership_change_goes_out_at_once() -> None:
    c = Cluster(3, extra=[4], lazy_commit=True)
    c.elect(1)
    c.stabilize()
    c[1].propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, 4))
    c.process(1)
    c.deliver()  # the entry reaches 2, 3 (and 4, which cannot take it yet)
    c.process(2)
    c.process(3)
    c.network = [m for m in c.network if m.dst == 1]  # only the acks to the leader
    c.deliver()
    c.process(1)  # commits (and applies) the change
    told = appends(c.network)
    assert {m.dst for m in told if not m.entries} >= {2, 3}, "the commit leaves at once"
    assert all(m.commit == c[1].commit for m in told if m.dst in (2, 3))
    c.deliver()
    c.process(2)
    c.process(3)
    assert 4 in c[2].conf_state.learners and 4 in c[3].conf_state.learners
