from __future__ import annotations

import pytest

from kvraft.core.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Ready,
    decode_conf_change,
    encode_conf_change,
)


def test_conf_change_round_trips() -> None:
    cc = ConfChange(ConfChangeType.ADD_LEARNER, 7, b"127.0.0.1:7007")
    assert decode_conf_change(encode_conf_change(cc)) == cc


def test_malformed_conf_change_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="malformed conf change"):
        decode_conf_change(b"{}")


def test_conf_state_dict_round_trip() -> None:
    cs = ConfState(voters=frozenset({1, 2, 3}), learners=frozenset({4}))
    assert ConfState.from_dict(cs.to_dict()) == cs
    assert cs.all_nodes() == {1, 2, 3, 4}
    gone = ConfState(voters=frozenset({1, 2}), removed=frozenset({3, 4}))
    assert ConfState.from_dict(gone.to_dict()) == gone and gone.all_nodes() == {1, 2}
    old = {"voters": [1, 2, 3], "learners": [4], "voters_outgoing": []}  # before `removed`
    assert ConfState.from_dict(old) == cs


def test_empty_ready_is_empty() -> None:
    assert Ready().is_empty()
    assert not Ready(dropped_reads=(1,)).is_empty()
