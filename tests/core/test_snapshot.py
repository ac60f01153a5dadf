"""Snapshots and compaction: InstallSnapshot for followers behind the compacted prefix,
and the follower's Figure 13 rules."""

from __future__ import annotations

from kvraft.core.types import AppendEntries, InstallSnapshot, Message, SnapshotMeta
from tests.core.harness import Cluster, start_recording


def lag_behind_snapshot(c: Cluster) -> SnapshotMeta:
    """Node 3 misses 20 entries that node 1 (the leader) then compacts away."""
    c.elect(1)
    c.stabilize()
    base = c[1].commit
    c.isolate(3)
    c.propose(1, *[f"v{k}" for k in range(20)])
    c.stabilize()
    meta = c.take_snapshot(1)
    c.take_snapshot(2)
    assert meta.index == c[1].commit == base + 20
    return meta


def test_follower_behind_the_compacted_prefix_gets_a_snapshot() -> None:
    c = Cluster(3)
    meta = lag_behind_snapshot(c)
    c.propose(1, "after")
    c.stabilize()
    c.heal()
    start_recording(c)
    c.run(3)
    text = c.transcript()
    assert f"send 1->3 Snapshot t{meta.term} index={meta.index}/{meta.term}" in text
    assert f"3: snapshot {meta.index}/{meta.term}" in text
    assert c.applied_data(3) == [f"v{k}" for k in range(20)] + ["after"]
    assert c[1].status()["progress"][3]["state"] == "replicate"  # type: ignore[index]


def test_snapshot_state_waits_for_the_transport_report() -> None:
    c = Cluster(3)
    lag_behind_snapshot(c)
    c.heal()
    snaps: list[Message] = []

    def hold_snapshots(m: Message) -> bool:
        if isinstance(m, InstallSnapshot):
            snaps.append(m)
            return True
        return False

    c.run(5, drop=hold_snapshots)
    assert len(snaps) == 1, "one snapshot, then nothing while it streams"
    c[1].report_snapshot(3, False)  # the stream failed: probe again, send it again
    c.run(3, drop=hold_snapshots)
    assert len(snaps) == 2
    c.network.append(snaps[-1])
    c[1].report_snapshot(3, True)
    c.run(3)
    assert c[3].commit == c[1].commit and c.applied_data(3) == c.applied_data(1)


def test_follower_ignores_a_snapshot_at_or_below_its_commit() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a", "b")
    c.stabilize()
    term = c[1].term
    c[2].step(InstallSnapshot(1, 2, term, SnapshotMeta(c[2].commit - 1, term, c[2].conf_state)))
    rd = c.process(2)
    assert rd is not None and rd.snapshot is None
    assert c.log_terms(2) == c.log_terms(1)


def test_follower_keeps_the_log_after_a_matching_snapshot_entry() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a", "b", "c")

    def entries_but_no_commit_for_2(m: Message) -> bool:
        return m.dst == 2 and not (isinstance(m, AppendEntries) and m.entries)

    c.stabilize(drop=entries_but_no_commit_for_2)
    last = c[1].last_index
    assert c[2].last_index == last and c[2].commit < last - 1
    term = c[1].term
    c[2].step(InstallSnapshot(1, 2, term, SnapshotMeta(last - 1, term, c[2].conf_state)))
    rd = c.process(2)
    assert rd is not None and rd.snapshot is None, "log holds the snapshot's entry: no restore"
    assert c[2].commit == last - 1 and c[2].last_index == last


def test_follower_with_a_conflicting_log_discards_it_for_the_snapshot() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    c.propose(1, "x", "y", "z")  # uncommitted on node 1 only
    c.stabilize()
    c.run(40)
    new = c.leader()
    c.propose(new, "a", "b", "c", "d")
    c.stabilize()
    meta = c.take_snapshot(new)
    c.heal()
    c.run(5)
    assert c.nodes[1].store.snap.index == meta.index, "node 1 installed the snapshot"
    assert c.applied_data(1) == ["a", "b", "c", "d"]
    assert c.log_terms(1) == c.log_terms(new)
