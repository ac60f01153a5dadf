"""The checkers must accept what Raft allows and reject each kind of violation."""

from __future__ import annotations

import pytest

from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    RequestVote,
    VoteResponse,
)
from tests.sim.invariants import (
    ElectionSafety,
    LeaderCompleteness,
    LogMatching,
    Monotonicity,
    ReadSafety,
    SafetyViolation,
    StateMachineSafety,
    VoteLedger,
    check_durable_before_send,
)


def E(index: int, term: int, data: bytes = b"") -> Entry:  # noqa: N802 - reads like a log
    return Entry(term=term, index=index, data=data)


# ---------------------------------------------------------------- election safety
def test_two_leaders_in_one_term_is_a_violation() -> None:
    es = ElectionSafety()
    es.observe(1, 1, "role")
    es.observe(1, 1, "role again")
    es.observe(2, 2, "role")
    with pytest.raises(SafetyViolation, match="two leaders in term 2"):
        es.observe_sent(Heartbeat(src=3, dst=1, term=2, commit=0))


def test_appends_sent_identify_the_leader() -> None:
    es = ElectionSafety()
    es.observe_sent(AppendEntries(3, 1, 4, 0, 0, (), 0))
    assert es.leaders == {4: 3}
    es.observe_sent(VoteResponse(src=1, dst=2, term=4, granted=True))  # not a leader message


# ---------------------------------------------------------------- log matching
def test_logs_that_agree_pass_and_a_divergent_suffix_is_allowed() -> None:
    lm = LogMatching()
    lm.check_entries(1, 0, [E(1, 1, b"a"), E(2, 1, b"b"), E(3, 2, b"c")])
    lm.check_entries(2, 0, [E(1, 1, b"a"), E(2, 1, b"b")])
    lm.check_entries(3, 1, [E(3, 3, b"x")])  # other term at index 3: fine
    lm.check_entries(2, 1, [E(3, 2, b"c")])  # after a snapshot at (2, 1)


def test_same_index_and_term_with_other_data_is_a_violation() -> None:
    lm = LogMatching()
    lm.check_entries(1, 0, [E(1, 1, b"a")])
    with pytest.raises(SafetyViolation, match="log matching"):
        lm.check_entries(2, 0, [E(1, 1, b"b")])


def test_same_entry_after_a_different_predecessor_is_a_violation() -> None:
    lm = LogMatching()
    lm.check_entries(1, 0, [E(1, 1), E(2, 3, b"z")])
    with pytest.raises(SafetyViolation, match="log matching"):
        lm.check_entries(2, 0, [E(1, 2), E(2, 3, b"z")])


def test_gap_and_decreasing_term_in_one_log_are_violations() -> None:
    with pytest.raises(SafetyViolation, match="not contiguous"):
        LogMatching().check_entries(1, 0, [E(1, 1), E(3, 1)])
    with pytest.raises(SafetyViolation, match="term goes back"):
        LogMatching().check_entries(1, 0, [E(1, 2), E(2, 1)])


# ---------------------------------------------------------------- leader completeness
def test_leader_missing_an_earlier_committed_entry_is_a_violation() -> None:
    lc = LeaderCompleteness()
    log = {1: 1, 2: 1, 3: 1}
    lc.observe_commit(node_term=1, commit=3)
    lc.record_committed(1, 0, 3, log.get)
    lc.check_leader_index(2, 2, last_index=3)
    lc.check_leader_log(2, 2, log.get)
    with pytest.raises(SafetyViolation, match="last index 2"):
        lc.check_leader_index(3, 2, last_index=2)
    with pytest.raises(SafetyViolation, match="holds term 2 at index 3"):
        lc.check_leader_log(3, 3, {1: 1, 2: 1, 3: 2}.get)


def test_leader_of_the_commit_term_itself_is_not_held_to_it() -> None:
    lc = LeaderCompleteness()
    lc.observe_commit(node_term=5, commit=4)
    lc.record_committed(1, 0, 4, lambda i: 5)
    lc.check_leader_index(9, 5, last_index=0)  # a stale leader of term 5
    lc.check_leader_log(9, 5, lambda i: 1)
    assert lc.required(6) == 4 and lc.max_commit == 4


def test_two_terms_committed_at_one_index_is_a_violation() -> None:
    lc = LeaderCompleteness()
    lc.record_committed(1, 0, 1, {1: 1}.get)
    lc.record_committed(3, 0, 1, {}.get)  # unknown: nothing to compare
    with pytest.raises(SafetyViolation, match="committed index 1 with term 2"):
        lc.record_committed(2, 0, 1, {1: 2}.get)


# ---------------------------------------------------------------- state machine safety
def test_applied_sequences_must_be_prefixes_of_one_history() -> None:
    sm = StateMachineSafety()
    sm.observe_apply(1, 0, E(1, 1, b"a"))
    sm.observe_apply(1, 1, E(2, 1, b"b"))
    sm.observe_apply(2, 0, E(1, 1, b"a"))
    sm.observe_restore(3, 0, [E(1, 1, b"a"), E(2, 1, b"b")])
    sm.observe_apply(3, 2, E(3, 2, b"c"))
    with pytest.raises(SafetyViolation, match="state machine safety"):
        sm.observe_apply(2, 1, E(2, 2, b"x"))
    with pytest.raises(SafetyViolation, match="right after index 0"):
        sm.observe_apply(4, 0, E(2, 1, b"b"))
    with pytest.raises(SafetyViolation, match="below its applied index"):
        sm.observe_restore(1, 2, [E(1, 1, b"a")])


# ---------------------------------------------------------------- monotonicity
def test_term_commit_and_vote_never_go_back() -> None:
    mo = Monotonicity()
    mo.observe_durable(1, HardState(2, 0, 1))
    mo.observe_durable(1, HardState(2, 3, 1))  # vote cast in term 2
    mo.observe_live(1, 0, 3, 0, 4)
    mo.observe_live(1, 1, 2, 3, 1)  # a restart may lose what was never made durable
    with pytest.raises(SafetyViolation, match="durable vote"):
        mo.observe_durable(1, HardState(2, 4, 1))
    with pytest.raises(SafetyViolation, match="live commit"):
        mo.observe_live(1, 1, 2, 3, 0)
    with pytest.raises(SafetyViolation, match="live-vs-disk term"):
        mo.observe_live(1, 2, 1, 0, 1)
    with pytest.raises(SafetyViolation, match="durable term"):
        mo.observe_durable(1, HardState(1, 0, 1))


# ---------------------------------------------------------------- votes and durability
def test_a_second_vote_in_a_term_is_a_violation_pre_votes_are_not() -> None:
    vl = VoteLedger()
    vl.observe_sent(VoteResponse(src=1, dst=2, term=3, granted=True))
    vl.observe_sent(VoteResponse(src=1, dst=2, term=3, granted=True))  # resent: same vote
    vl.observe_sent(VoteResponse(src=1, dst=3, term=3, granted=True, pre_vote=True))
    vl.observe_sent(VoteResponse(src=1, dst=3, term=3, granted=False))
    with pytest.raises(SafetyViolation, match="double vote"):
        vl.observe_sent(VoteResponse(src=1, dst=3, term=3, granted=True))
    vl.observe_durable(1, HardState(term=3, vote=2))
    vl.observe_durable(3, HardState(term=3, vote=3))  # a candidate's vote for itself
    with pytest.raises(SafetyViolation, match="vote on disk"):
        vl.observe_durable(1, HardState(term=3, vote=1))


def test_messages_must_not_run_ahead_of_the_disk() -> None:
    hs = HardState(term=3, vote=2, commit=0)
    check_durable_before_send(VoteResponse(1, 2, 3, True), hs, 0, 0)
    check_durable_before_send(RequestVote(1, 2, 4, 0, 0, pre_vote=True), hs, 0, 0)
    check_durable_before_send(AppendResponse(1, 2, 3, index=5), hs, 5, 0)
    check_durable_before_send(AppendResponse(1, 2, 3, index=5), hs, 0, 5)  # in the snapshot
    check_durable_before_send(AppendResponse(1, 2, 2, index=9), hs, 5, 0)  # superseded term
    check_durable_before_send(RequestVote(2, 1, 3, 5, 3), hs, 5, 0)  # term, vote, log on disk
    check_durable_before_send(RequestVote(2, 1, 2, 9, 2), hs, 5, 0)  # a campaign of old
    # Other requests, rejections and heartbeat answers promise nothing durable.
    check_durable_before_send(AppendResponse(1, 2, 4, index=9, reject=True), hs, 0, 0)
    check_durable_before_send(HeartbeatResponse(1, 2, 4), hs, 0, 0)
    with pytest.raises(SafetyViolation, match="AppendResponse in term 4"):
        check_durable_before_send(AppendResponse(1, 2, 4, index=0), hs, 0, 0)
    with pytest.raises(SafetyViolation, match="in term 4"):
        check_durable_before_send(Heartbeat(1, 2, 4, 0), hs, 0, 0)
    with pytest.raises(SafetyViolation, match="granted its term-3 vote to 3"):
        check_durable_before_send(VoteResponse(1, 3, 3, True), hs, 0, 0)
    with pytest.raises(SafetyViolation, match="acknowledged index 6"):
        check_durable_before_send(AppendResponse(1, 2, 3, index=6), hs, 5, 0)
    # A vote request: grants bind voters to the term and log it claims.
    with pytest.raises(SafetyViolation, match="vote in term 4 with term 3 on disk"):
        check_durable_before_send(RequestVote(1, 2, 4, 0, 0), hs, 0, 0)
    with pytest.raises(SafetyViolation, match="with vote 2 and only 5 on disk"):
        check_durable_before_send(RequestVote(1, 2, 3, 5, 3), hs, 5, 0)
    with pytest.raises(SafetyViolation, match="claiming last index 6"):
        check_durable_before_send(RequestVote(2, 1, 3, 6, 3), hs, 5, 0)


# ---------------------------------------------------------------- reads
def test_read_index_below_an_earlier_commit_is_a_violation() -> None:
    rs = ReadSafety()
    rs.issued(1, node=1, min_index=5)
    rs.issued(2, node=1, min_index=5)
    rs.issued(3, node=2, min_index=0)
    rs.answered(1, 1, 5)
    with pytest.raises(SafetyViolation, match="after being answered"):
        rs.dropped(1, 1)
    with pytest.raises(SafetyViolation, match="committed before it was issued"):
        rs.answered(2, 1, 4)
    with pytest.raises(SafetyViolation, match="never asked"):
        rs.answered(3, 1, 9)
    rs.forget_node(2)
    with pytest.raises(SafetyViolation, match="lost in crash"):
        rs.answered(3, 2, 9)
