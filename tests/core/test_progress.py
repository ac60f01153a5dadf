from __future__ import annotations

from kvraft.core.progress import Inflights, Progress, ProgressState


def test_inflights_bound_count_and_bytes() -> None:
    inf = Inflights(max_count=3, max_bytes=100)
    inf.add(5, 10)
    inf.add(8, 10)
    assert not inf.full()
    inf.add(9, 10)
    assert inf.full() and len(inf) == 3
    inf.free_le(8)
    assert len(inf) == 1 and inf.bytes == 10 and not inf.full()
    inf.add(12, 95)
    assert inf.full(), "byte budget exhausted"
    inf.free_first()
    assert len(inf) == 1 and inf.bytes == 95


def test_probe_sends_one_message_then_waits() -> None:
    pr = Progress(next_index=11, max_inflight=4, max_inflight_bytes=1 << 20)
    assert pr.state is ProgressState.PROBE and not pr.is_paused()
    pr.on_entries_sent(12, 2, 60)
    assert pr.is_paused() and pr.next == 11, "probe does not advance next optimistically"
    assert pr.maybe_update(12)
    assert not pr.is_paused() and pr.next == 13


def test_replicate_pipelines_until_window_full() -> None:
    pr = Progress(next_index=1, max_inflight=2, max_inflight_bytes=1 << 20)
    pr.maybe_update(0)
    pr.become_replicate()
    pr.on_entries_sent(5, 5, 100)
    pr.on_entries_sent(10, 5, 100)
    assert pr.next == 11 and pr.is_paused()
    pr.maybe_update(5)
    pr.inflights.free_le(5)
    assert not pr.is_paused() and pr.match == 5


def test_rejections_move_next_back_using_the_hint() -> None:
    pr = Progress(next_index=101, max_inflight=4, max_inflight_bytes=1 << 20)
    # probe: reject of prev=100 with follower hint 20 -> next probe from 21
    assert pr.maybe_decrease_to(100, 20)
    assert pr.next == 21
    # a duplicate reject of the same prev index is stale now
    assert not pr.maybe_decrease_to(100, 20)
    pr.maybe_update(30)
    pr.become_replicate()
    pr.on_entries_sent(40, 10, 10)
    assert not pr.maybe_decrease_to(25, 0), "reject at or below match is stale"
    assert pr.maybe_decrease_to(35, 0)
    assert pr.next == 31


def test_snapshot_state_pauses_and_probe_resumes_after_it() -> None:
    pr = Progress(next_index=3, max_inflight=4, max_inflight_bytes=1 << 20)
    pr.become_snapshot(50)
    assert pr.is_paused()
    pr.become_probe()
    assert pr.state is ProgressState.PROBE and pr.next == 51
