from __future__ import annotations

from kvraft.core.types import Heartbeat, HeartbeatResponse
from tests.sim.network import SimNetwork


def hb(src: int, dst: int, commit: int = 0) -> Heartbeat:
    return Heartbeat(src=src, dst=dst, term=1, commit=commit)


def test_any_envelope_can_be_delivered_first_so_messages_reorder() -> None:
    net = SimNetwork()
    net.send(hb(1, 2, commit=1))
    net.send(hb(1, 2, commit=2))
    env = net.take(1)
    assert env is not None and env.msg == hb(1, 2, commit=2)
    env = net.take(0)
    assert env is not None and env.msg == hb(1, 2, commit=1)
    assert len(net) == 0
    assert net.stats.delivered == 2


def test_duplicate_makes_an_independent_copy_and_drop_loses_one() -> None:
    net = SimNetwork()
    first = net.send(hb(1, 2))
    copy = net.duplicate(0)
    assert copy.msg == first.msg and copy.seq > first.seq
    assert net.drop(0) is first
    env = net.take(0)
    assert env is copy


def test_one_way_cut_loses_only_that_direction() -> None:
    net = SimNetwork()
    net.cut_one_way(1, 2)
    net.send(hb(1, 2))
    net.send(HeartbeatResponse(src=2, dst=1, term=1))
    assert net.take(0) is None  # 1 -> 2 is cut
    env = net.take(0)
    assert env is not None and env.msg.src == 2
    assert net.stats.cut == 1
    assert not net.connected(1, 2) and net.connected(2, 1)


def test_symmetric_partition_cuts_between_groups_not_within() -> None:
    net = SimNetwork()
    net.partition([[1, 2], [3]])
    assert net.connected(1, 2) and net.connected(2, 1)
    for a, b in [(1, 3), (3, 1), (2, 3), (3, 2)]:
        assert not net.connected(a, b)
    net.heal()
    assert net.connected(1, 3) and net.describe_cuts() == "none"


def test_cut_is_checked_at_delivery_time() -> None:
    net = SimNetwork()
    net.send(hb(1, 3))  # sent before the partition ...
    net.isolate(3, [1, 2, 3])
    assert net.take(0) is None  # ... lost by it
    net.send(hb(1, 3))
    net.heal()
    assert net.take(0) is not None


def test_fifo_index_and_drop_where() -> None:
    net = SimNetwork()
    net.send(hb(2, 1))
    net.send(hb(1, 3, commit=5))
    net.send(hb(1, 3, commit=6))
    assert net.oldest_index(1, 3) == 1
    assert net.oldest_index(3, 1) is None
    assert net.drop_where(3) == 2
    assert [e.msg.src for e in net.inflight] == [2]
