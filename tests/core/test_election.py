"""Elections: randomized timeouts, pre-vote, check-quorum, vote durability."""

from __future__ import annotations

import pytest

from kvraft.core import Config, RawNode
from kvraft.core.types import AppendEntries, RequestVote, Role, VoteResponse
from kvraft.errors import NotLeader
from tests.core.harness import Cluster, MemStore, start_recording


def test_a_leader_emerges_from_ticks_alone() -> None:
    c = Cluster(5, seed=7)
    ticks = 0
    while not c.leaders() and ticks < 60:
        ticks += 1
        c.run(1)
    leader = c.leader()
    assert 10 <= ticks < 25, f"first election after {ticks} ticks"
    assert all(c[n].leader == leader and c[n].term == c[leader].term for n in c.nodes)


def test_election_timeouts_are_randomized_within_range() -> None:
    firsts = set()
    for seed in range(20):
        node = RawNode(Config(id=1), MemStore([1, 2, 3]), __import__("random").Random(seed))
        for t in range(1, 40):
            node.tick()
            if node.role is Role.PRE_CANDIDATE:
                firsts.add(t)
                break
    assert min(firsts) >= 10 and max(firsts) < 20
    assert len(firsts) > 3, f"timeouts not spread out: {firsts}"


def test_transcript_of_a_pre_vote_election() -> None:
    c = Cluster(3)
    start_recording(c)
    c[1].campaign()
    c.round()
    assert c.transcript() == "\n".join(
        [
            "1: soft pre_candidate leader=0 t0",
            "  send 1->2 PreVote t1 last=0/0",
            "  send 1->3 PreVote t1 last=0/0",
            "  deliver 1->2 PreVote t1 last=0/0",
            "  deliver 1->3 PreVote t1 last=0/0",
        ]
    )
    c.round()
    assert c.transcript() == "\n".join(
        [
            "  send 2->1 PreVoteResp t1 granted",
            "  send 3->1 PreVoteResp t1 granted",
            "  deliver 2->1 PreVoteResp t1 granted",
            "  deliver 3->1 PreVoteResp t1 granted",
        ]
    )
    c.round()
    assert c.transcript() == "\n".join(
        [
            "1: soft candidate leader=0 t1",
            "1: hard t1 vote=1 commit=0",
            "  send after persist 1->2 Vote t1 last=0/0",
            "  send after persist 1->3 Vote t1 last=0/0",
            "  deliver 1->2 Vote t1 last=0/0",
            "  deliver 1->3 Vote t1 last=0/0",
        ]
    )
    c.round()
    assert c.transcript() == "\n".join(
        [
            "2: soft follower leader=0 t1",
            "2: hard t1 vote=1 commit=0",
            "  send after persist 2->1 VoteResp t1 granted",
            "3: soft follower leader=0 t1",
            "3: hard t1 vote=1 commit=0",
            "  send after persist 3->1 VoteResp t1 granted",
            "  deliver 2->1 VoteResp t1 granted",
            "  deliver 3->1 VoteResp t1 granted",
        ]
    )
    c.round()
    assert c.transcript().splitlines()[:3] == [
        "1: soft leader leader=1 t1",
        "1: entries [1/1 2/1:add_voter(1) 3/1:add_voter(2) 4/1:add_voter(3)]",
        "  send 1->2 App t1 prev=0/0 [1/1 2/1:add_voter(1) 3/1:add_voter(2) 4/1:add_voter(3)] "
        "commit=0",
    ], "a new leader appends an empty entry of its term (+ the first one, the membership)"


def test_partitioned_node_does_not_disrupt_on_return_with_pre_vote() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, "x")
    c.stabilize()
    term = c[1].term
    c.isolate(3)
    c.run(100)  # node 3 times out again and again, but never wins a pre-vote
    assert c[3].term == term, "pre-vote kept node 3's term from rising"
    assert c[3].role is Role.PRE_CANDIDATE
    c.heal()
    c.run(30)
    assert c.leader() == 1 and c[1].term == term, "leader undisturbed"
    assert c[3].leader == 1 and c.applied_data(3) == ["x"]


def test_without_pre_vote_a_returning_node_disrupts_the_leader() -> None:
    c = Cluster(3, pre_vote=False, check_quorum=False)
    c.elect(1)
    term = c[1].term
    c.isolate(3)
    c.run(60)
    assert c[3].term > term + 2, "without pre-vote the isolated node keeps raising its term"
    c.heal()
    c.run(60)
    assert c[c.leader()].term > c[3].term - 1 > term, "the cluster had to move to node 3's term"


def test_leader_without_quorum_steps_down_within_an_election_timeout() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    ticks = 0
    while c[1].role is Role.LEADER and ticks < 30:
        ticks += 1
        c.tick([1])
        c.stabilize()
    assert ticks <= 10, f"stepped down after {ticks} ticks"
    assert c[1].role is Role.FOLLOWER and c[1].leader == 0
    c.run(40)
    assert c.leader() in (2, 3), "the majority side elected a new leader"


def test_leader_keeps_leadership_while_quorum_answers() -> None:
    c = Cluster(5)
    c.elect(1)
    c.isolate(4)
    c.isolate(5)
    c.run(50)
    assert c.leader() == 1, "two of five unreachable is still a quorum"


def test_follower_ignores_vote_requests_while_it_hears_a_leader() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    c[2].step(RequestVote(3, 2, term + 1, 100, term))  # a disruptive real vote request
    rd = c[2].ready()
    c[2].advance(rd)
    assert c[2].term == term and c[2].vote == 1, "leader stickiness"
    assert not rd.messages and not rd.persisted_messages


def test_vote_is_granted_only_after_it_is_durable() -> None:
    c = Cluster(3)
    c.elect(1)
    term = c[1].term
    c.tick(n=30, nids=[2, 3])  # followers stop hearing from the leader
    c.process(2, send=False)  # (its own pre-campaign goes nowhere)
    c[2].step(RequestVote(3, 2, term + 1, c[2].last_index, term))
    rd = c[2].ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 3
    assert rd.persisted_messages == (VoteResponse(2, 3, term + 1, True),)
    assert rd.messages == ()
    # crash after persisting, before sending: the vote survives the restart
    c.nodes[2].store.save(hard_state=rd.hard_state)
    c.crash(2)
    c.restart(2)
    assert (c[2].term, c[2].vote) == (term + 1, 3)
    c[2].step(RequestVote(1, 2, term + 1, 100, term))  # another candidate, same term
    rd = c[2].ready()
    assert rd.persisted_messages == ()
    assert rd.messages == (VoteResponse(2, 1, term + 1, False),), "never two votes in a term"


def test_crash_before_persisting_the_vote_forgets_it_safely() -> None:
    c = Cluster(3)
    c[2].tick()  # no leader known
    c[2].step(RequestVote(3, 2, 1, 0, 0))
    rd = c[2].ready()
    assert rd.persisted_messages, "the grant waits for persistence"
    c.crash(2)  # nothing persisted, nothing sent
    c.restart(2)
    assert (c[2].term, c[2].vote) == (0, 0)


def test_candidate_counts_its_own_vote_only_once_persisted() -> None:
    c = Cluster(1)
    c[1].campaign()
    rd = c[1].ready()
    assert c[1].role is Role.CANDIDATE and rd.hard_state is not None
    c.nodes[1].store.save(hard_state=rd.hard_state)
    c[1].advance(rd)
    assert c[1].role is Role.LEADER


def test_stale_leader_steps_down_on_hearing_a_higher_term() -> None:
    c = Cluster(3)
    c.elect(1)
    c.isolate(1)
    c.run(40)
    new = c.leader()
    assert new != 1 and c[1].role is not Role.LEADER
    old_term = c[1].term
    c.heal()
    # even a stale message from 1 gets our term back, which makes 1 a follower
    c[new].step(AppendEntries(1, new, old_term, 0, 0, (), 0))
    c.stabilize()
    assert c[1].term == c[new].term
    c.run(2)
    assert c[1].leader == new and c.leader() == new


def test_learners_and_non_members_never_campaign() -> None:
    c = Cluster(3, learners=[4], extra=[5])
    c.tick(n=100, nids=[4, 5])
    c.stabilize()
    assert c[4].role is Role.LEARNER and c[5].role is Role.FOLLOWER
    assert c[4].term == 0 and c[5].term == 0


def test_proposal_on_a_follower_names_the_leader() -> None:
    c = Cluster(3)
    with pytest.raises(NotLeader) as unknown:
        c[2].propose(b"x")
    assert unknown.value.leader_id == 0
    c.elect(1)
    with pytest.raises(NotLeader) as known:
        c[2].propose(b"x")
    assert known.value.leader_id == 1


def test_vote_requests_leave_only_once_the_candidates_term_is_durable() -> None:
    c = Cluster(3, pre_vote=False)
    c[1].campaign()
    rd = c[1].ready()
    assert rd.hard_state is not None and (rd.hard_state.term, rd.hard_state.vote) == (1, 1)
    assert not [m for m in rd.messages if isinstance(m, RequestVote)], "sent before persisting"
    assert sorted(m.dst for m in rd.persisted_messages if isinstance(m, RequestVote)) == [2, 3]


def test_pre_vote_requests_leave_at_once() -> None:
    c = Cluster(3)
    c[1].campaign()
    rd = c[1].ready()
    assert rd.hard_state is None, "a pre-vote changes neither term nor vote"
    pre = [m for m in rd.messages if isinstance(m, RequestVote)]
    assert [(m.dst, m.term, m.pre_vote) for m in pre] == [(2, 1, True), (3, 1, True)]


def test_candidate_that_crashes_before_persisting_cannot_win_with_its_lost_log() -> None:
    """Node 2 campaigns holding a committed entry it has not persisted yet, and crashes
    before persisting. Had its vote requests left already, their grants (for a log that
    holds the entry) would elect it again after the restart, in the same term, without
    the entry: it would then overwrite the committed entry on the others."""
    c = Cluster(3, pre_vote=False, check_quorum=False)
    c.elect(1)
    term = c[1].term
    [index] = c.propose(1, "x")
    c.process(1)  # leader persists "x" and sends it
    c.deliver()  # 2 and 3 hold "x", not yet persisted
    c.process(3)
    c.deliver()  # 3's ack reaches 1
    c.process(1)
    c.network.clear()  # 1's commit news is lost
    assert c[1].commit >= index, "x is committed (on 1 and 3)"
    c[2].campaign()  # 2 still holds "x" in memory and claims it
    rd = c[2].ready()
    c.network.extend(rd.messages)  # what may leave before persisting does
    c.crash(2)  # ... and nothing of that Ready reached 2's disk
    c.deliver()
    c.process(1)
    c.process(3)  # grants, if 2's requests got out, are now in flight to 2
    c.restart(2)
    assert (c[2].term, c[2].last_index) == (term, index - 1), "2 lost its campaign and x"
    c[2].campaign()  # the same term again
    c.stabilize()
    assert c[2].role is not Role.LEADER, "elected without the committed entry"
    c.run(50)
    leader = c.leader()
    assert c[leader].term > term
    for nid in c.nodes:
        assert ("x" in c.applied_data(nid)) and (index, term) in c.log_terms(nid), nid


def test_vote_requests_of_a_campaign_that_ended_before_persisting_never_leave() -> None:
    c = Cluster(3, pre_vote=False)
    c[3].campaign()  # candidate in term 1; its requests wait for the disk
    c[3].step(AppendEntries(2, 3, 1, 0, 0, (), 0))  # 2 won term 1 meanwhile
    assert c[3].role is Role.FOLLOWER and c[3].leader == 2
    rd = c[3].ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 3
    assert not [m for m in rd.messages + rd.persisted_messages if isinstance(m, RequestVote)]
