"""Leadership transfer: catch up, TimeoutNow, refuse proposals meanwhile, abort."""

from __future__ import annotations

import pytest

from kvraft.core.types import Message, Role, TimeoutNow
from kvraft.errors import InvalidConfChange, NotLeader, TransferInProgress
from tests.core.harness import Cluster, start_recording


def test_transfer_to_an_up_to_date_follower() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    last = c[1].last_index
    start_recording(c)
    c[1].transfer_leadership(2)
    c.stabilize()
    text = c.transcript()
    assert f"send 1->2 TimeoutNow t{term}" in text
    vote = f"send after persist 2->1 Vote t{term + 1} last={last}/{term} transfer"
    assert vote in text, "no pre-vote"
    assert c.leader() == 2 and c[2].term == term + 1
    c.propose(2, "after")
    c.stabilize()
    assert c.applied_data(1) == ["after"]


def test_transfer_catches_the_target_up_first_and_refuses_proposals() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c.propose(1, *["x"] * 10)
    c.stabilize()
    c.heal()
    c[1].transfer_leadership(3)
    with pytest.raises(TransferInProgress) as err:
        c[1].propose(b"y")
    assert err.value.leader_id == 3
    timeout_now: list[Message] = []

    def spy(m: Message) -> bool:
        if isinstance(m, TimeoutNow):
            assert c[1].status()["progress"][3]["match"] == c[1].last_index  # type: ignore[index]
            timeout_now.append(m)
        return False

    c.run(3, drop=spy)
    assert len(timeout_now) == 1 and c.leader() == 3
    assert c.applied_data(3) == ["x"] * 10


def test_transfer_aborts_after_an_election_timeout() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.isolate(3)  # target unreachable: it can never catch up
    c.stabilize()
    c[1].transfer_leadership(3)

    def raises_transfer() -> bool:
        try:
            c[1].propose(b"b")
        except TransferInProgress:
            return True
        return False

    c.run(9)
    assert raises_transfer()
    c.run(1)
    assert not raises_transfer(), "aborted after election_ticks"
    assert c.leader() == 1
    c.stabilize()
    assert c.applied_data(2) == ["a", "b"]


def test_transfer_needs_a_leader_and_a_voter_target() -> None:
    c = Cluster(3, learners=[4])
    c.elect(1)
    with pytest.raises(NotLeader) as err:
        c[2].transfer_leadership(3)
    assert err.value.leader_id == 1
    with pytest.raises(InvalidConfChange):
        c[1].transfer_leadership(4)
    with pytest.raises(InvalidConfChange):
        c[1].transfer_leadership(9)


def test_no_lease_reads_once_a_transfer_started() -> None:
    c = Cluster(3)
    c.elect(1)
    c.run(1)

    def no_timeout_now(m: Message) -> bool:
        return isinstance(m, TimeoutNow)

    c[1].transfer_leadership(2)
    c.stabilize(drop=no_timeout_now)
    c.run(10, drop=no_timeout_now)  # transfer aborted; TimeoutNow may still be in flight
    assert c[1].role is Role.LEADER
    c[1].read_index(1, lease=True)
    rd = c.process(1)
    assert rd is not None and rd.read_states == (), "lease not trusted after a TimeoutNow"
    c.stabilize()
    assert [r.request_id for r in c.nodes[1].reads] == [1], "answered by a heartbeat round"
