"""Log replication: batching, flow control, commit rules, backtracking, persistence."""

from __future__ import annotations

from dataclasses import replace

from kvraft.core.types import AppendEntries, AppendResponse, Message, Role
from kvraft.errors import ProposalDropped
from tests.core.harness import Cluster, start_recording


def appends(msgs: tuple[Message, ...], dst: int | None = None) -> list[AppendEntries]:
    return [m for m in msgs if isinstance(m, AppendEntries) and dst in (None, m.dst)]


def test_many_proposals_between_readies_go_in_one_message_per_follower() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, *[f"v{k}" for k in range(100)])
    rd = c[1].ready()
    msgs = appends(rd.messages)
    assert [m.dst for m in msgs] == [2, 3]
    assert all(len(m.entries) == 100 for m in msgs)
    assert len(rd.entries) == 100, "one durable write for all of them (group commit)"


def test_batches_are_bounded_by_count_and_bytes() -> None:
    c = Cluster(3, max_entries_per_msg=10, max_bytes_per_msg=1000)
    c.elect(1)
    c.propose(1, *["x"] * 35)
    rd = c.process(1)
    assert rd is not None
    sizes = [len(m.entries) for m in appends(rd.messages, dst=2)]
    assert sizes == [10, 10, 10, 5]
    c.stabilize()
    c.propose(1, *["y" * 276] * 6)  # 300 bytes each: three fit in 1000
    rd = c.process(1)
    assert rd is not None
    sizes = [len(m.entries) for m in appends(rd.messages, dst=2)]
    assert sizes == [3, 3]


def test_oversized_proposal_is_dropped() -> None:
    c = Cluster(3, max_bytes_per_msg=100)
    c.elect(1)
    try:
        c[1].propose(b"z" * 200)
    except ProposalDropped as exc:
        assert "max_bytes_per_msg=100" in str(exc)
    else:
        raise AssertionError("expected ProposalDropped")


def test_inflight_window_limits_unacknowledged_messages() -> None:
    c = Cluster(3, max_entries_per_msg=1, max_inflight_msgs=3)
    c.elect(1)
    c.propose(1, *["a"] * 10)
    c.process(1)
    assert len(appends(tuple(c.network), dst=2)) == 3, "window of 3 messages"
    c.stabilize()
    assert c.applied_data(2) == ["a"] * 10, "acks reopen the window until all is sent"


def test_leader_counts_itself_only_for_persisted_entries() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c.propose(1, "a")
    rd = c[1].ready()  # handed out, not yet persisted by the leader
    c.network.extend(rd.messages)
    c.deliver()
    c.process(2)
    c.deliver()  # node 2's ack reaches the leader
    assert c[1].commit < rd.entries[-1].index, "1 of 3 acks without the leader's own"
    c.nodes[1].store.save(entries=rd.entries, hard_state=rd.hard_state)
    c[1].advance(rd)
    assert c[1].commit == rd.entries[-1].index


def test_crash_between_persist_and_send_is_safe() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    c.propose(1, "a")
    c.process(1)
    c.deliver()
    rd = c[2].ready()
    assert [type(m) for m in rd.persisted_messages] == [AppendResponse]
    c.nodes[2].store.save(entries=rd.entries, hard_state=rd.hard_state)
    c.crash(2)  # persisted, ack never sent
    c.stabilize()
    assert c[1].commit < rd.entries[-1].index
    c.restart(2)
    c.run(3)
    assert c.applied_data(1) == ["a"] and c.applied_data(2) == ["a"]


def test_lagging_follower_catches_up_in_few_round_trips() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(3)
    for k in range(10):
        c.propose(1, *[f"{k}-{j}" for j in range(100)])
        c.stabilize()
    assert c[1].commit >= 1000 and c[3].last_index < 5
    c.heal()
    c[1].tick()  # heartbeat -> response -> probe
    rounds = c.rounds_until(lambda: c[3].commit == c[1].commit)
    print(f"lagging follower: {rounds} rounds")
    assert rounds <= 8, f"1000 entries behind repaired in {rounds} rounds"
    c.stabilize()
    assert c.applied_data(3) == c.applied_data(1)


def test_divergent_follower_is_repaired_in_few_round_trips() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "base")
    c.stabilize()
    c.isolate(1)
    for _ in range(10):  # 1000 uncommitted entries of the old term
        c.propose(1, *["junk"] * 100)
        c.stabilize()
    c.run(40)
    new = c.leader()
    for _ in range(5):
        c.propose(new, *["good"] * 100)
        c.stabilize()
    c.heal()
    c.tick([new])
    rounds = c.rounds_until(lambda: c[1].commit == c[new].commit)
    print(f"divergent follower: {rounds} rounds")
    assert rounds <= 8, f"divergent follower repaired in {rounds} rounds"
    c.stabilize()
    assert c.applied_data(1) == c.applied_data(new) == ["base"] + ["good"] * 500
    assert c.log_terms(1) == c.log_terms(new)


def test_figure_8_commit_only_by_counting_current_term_entries() -> None:
    """Raft paper Figure 8: an old-term entry stored on a majority is not committed by a
    later leader until an entry of its own term is; otherwise it could be overwritten.
    Index ``b + 1`` plays the figure's index 2 (``b`` = what the first leader committed)."""
    c = Cluster(5, max_entries_per_msg=1)
    c.elect(1)  # (a) S1 leads term t1; its first entries are committed everywhere
    t1 = c[1].term
    b = c[1].commit
    c.partition([1, 2], [3, 4, 5])
    c.propose(1, "a")  # index b+1 reaches S1 and S2 only
    c.stabilize()
    assert c.log_terms(2)[-1] == (b + 1, t1)
    c.crash(1)  # (b) S5 wins with S3, S4 and writes its own index b+1
    c.partition([3, 4, 5], [2])
    c.expire_leader()
    c[5].campaign()
    c.stabilize(drop=lambda m: isinstance(m, AppendEntries) and m.src == 5)
    t2 = c[5].term
    assert c[5].role is Role.LEADER and c.log_terms(5)[-1] == (b + 1, t2)
    c.crash(5)  # (c) S5 down before replicating; S1 back, elected with S2, S3, S4
    c.heal()
    c.restart(1)
    c.expire_leader()  # everyone forgets S5

    # S1 replicates only index b+1 (term t1) to S3, never its own index b+2: the old entry
    # sits on a majority (S1, S2, S3) but must not commit.
    def old_entry_only(m: Message) -> bool | Message:
        if isinstance(m, AppendEntries):
            return replace(m, entries=tuple(e for e in m.entries if e.index <= b + 1))
        return False

    for _ in range(2):  # the first pre-vote only teaches S1 the current term
        c[1].campaign()
        c.stabilize(drop=old_entry_only)
    assert c[1].role is Role.LEADER
    t3 = c[1].term
    c.run(3, drop=old_entry_only)
    assert all(c.log_terms(n)[b] == (b + 1, t1) for n in (1, 2, 3))
    assert c[1].commit == b, "index b+1 on a majority, but of an older term: not committed"
    # (d) S1 crashes; S5 returns and wins with S2, S3, S4, overwriting index b+1 everywhere.
    c.crash(1)
    c.restart(5)
    c.expire_leader()
    c.elect(5)
    assert c[5].term > t3
    c.restart(1)
    c.run(10)
    assert all(c.log_terms(n)[b] == (b + 1, t2) for n in c.nodes), "S1's entry overwritten"
    assert all("a" not in c.applied_data(n) for n in c.nodes), "never applied anywhere"


def test_figure_8_current_term_entry_commits_the_older_ones() -> None:
    c = Cluster(5)
    c.elect(1)
    c.partition([1, 2], [3, 4, 5])
    c.propose(1, "a")
    c.stabilize()
    c.crash(1)
    c.heal()
    c.restart(1)
    c.expire_leader()
    c.elect(1)  # its no-op of the new term carries "a" to a majority and commits both
    c.stabilize()
    assert all(c.applied_data(n) == ["a"] for n in c.nodes)


def test_isolated_old_leader_rejoins_and_loses_its_uncommitted_entries() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "committed")
    c.stabilize()
    c.isolate(1)
    c.propose(1, "lost-1", "lost-2")
    c.stabilize()
    c.run(40)
    new = c.leader()
    c.propose(new, "new-1")
    c.stabilize()
    start_recording(c)
    c.heal()
    c.run(5)
    text = c.transcript()
    assert "1: entries [" in text, "the old leader rewrote its log"
    assert c.applied_data(1) == ["committed", "new-1"]
    assert c.log_terms(1) == c.log_terms(new)
    assert c[1].role is Role.FOLLOWER and c[1].leader == new


def test_backup_scenario_twice_in_five_nodes() -> None:
    """50 uncommitted entries in a minority while the majority commits 50 — twice."""
    c = Cluster(5)
    c.elect(1)
    c.propose(1, "base")
    c.stabilize()
    for round_ in range(2):
        leader = c.leader()
        others = [n for n in sorted(c.nodes) if n != leader]
        minority = [leader, others[0]]
        majority = others[1:]
        c.partition(minority, majority)
        c.propose(leader, *[f"lost{round_}-{k}" for k in range(50)])
        c.stabilize()
        c.run(40)  # the minority leader steps down; the majority elects one
        new = [n for n in c.leaders() if n in majority]
        assert len(new) == 1, c.leaders()
        c.propose(new[0], *[f"kept{round_}-{k}" for k in range(50)])
        c.stabilize()
        c.heal()
        c.run(20)
    leader = c.leader()
    expected = ["base"] + [f"kept{r}-{k}" for r in range(2) for k in range(50)]
    for n in c.nodes:
        assert c.applied_data(n) == expected, n
        assert c.log_terms(n) == c.log_terms(leader)


def test_follower_handles_new_appends_while_a_ready_is_outstanding() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "a")
    c.process(1)
    c.deliver()
    rd1 = c[2].ready()  # entries [a] being written
    c.propose(1, "b")
    c.process(1)
    c.deliver()  # append of b arrives while rd1 is outstanding
    c.nodes[2].store.save(entries=rd1.entries, hard_state=rd1.hard_state)
    c.network.extend(rd1.persisted_messages)
    c[2].advance(rd1)
    rd2 = c[2].ready()
    assert [e.data for e in rd2.entries] == [b"b"], "only what was not handed out yet"
    c.nodes[2].store.save(entries=rd2.entries, hard_state=rd2.hard_state)
    c.network.extend(rd2.persisted_messages)
    c[2].advance(rd2)
    c.stabilize()
    assert c.applied_data(2) == ["a", "b"]
