from __future__ import annotations

import pytest

from kvraft.core.quorum import JointConfig, VoteResult, majority_index, majority_vote


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        ({1: 5}, 5),
        ({1: 5, 2: 3}, 3),
        ({1: 5, 2: 3, 3: 1}, 3),
        ({1: 9, 2: 9, 3: 1, 4: 1}, 1),
        ({1: 9, 2: 9, 3: 4, 4: 1}, 4),
        ({1: 7, 2: 6, 3: 5, 4: 4, 5: 3}, 5),
    ],
)
def test_majority_index_is_what_a_majority_holds(matches: dict[int, int], expected: int) -> None:
    assert majority_index(matches, matches.__getitem__) == expected


def test_majority_vote_decides_as_soon_as_possible() -> None:
    voters = frozenset({1, 2, 3, 4, 5})
    assert majority_vote(voters, {1: True, 2: True}) is VoteResult.PENDING
    assert majority_vote(voters, {1: True, 2: True, 3: True}) is VoteResult.WON
    assert majority_vote(voters, {1: True, 2: False, 3: False}) is VoteResult.PENDING
    assert majority_vote(voters, {1: True, 2: False, 3: False, 4: False}) is VoteResult.LOST
    # answers from non-voters (learners, removed nodes) do not count
    assert majority_vote(frozenset({1, 2, 3}), {1: True, 9: True, 8: True}) is VoteResult.PENDING


def test_joint_config_needs_both_majorities() -> None:
    joint = JointConfig(frozenset({1, 2, 3}), frozenset({3, 4, 5}))
    matches = {1: 10, 2: 10, 3: 4, 4: 4, 5: 2}
    assert joint.committed_index(matches.__getitem__) == 4
    assert joint.vote_result({1: True, 2: True}) is VoteResult.PENDING
    assert joint.vote_result({1: True, 2: True, 4: True, 5: True}) is VoteResult.WON
    assert joint.vote_result({4: False, 5: False, 1: True, 2: True}) is VoteResult.LOST
    assert joint.has_quorum({1, 3, 4})
    assert not joint.has_quorum({1, 2, 4})


def test_simple_config_is_not_joint() -> None:
    simple = JointConfig(frozenset({1, 2, 3}))
    assert simple.committed_index({1: 3, 2: 2, 3: 1}.__getitem__) == 2
    assert simple.has_quorum({2, 3})
    assert simple.is_singleton(1) is False
    assert JointConfig(frozenset({1})).is_singleton(1)
