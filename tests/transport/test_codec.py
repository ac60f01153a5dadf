"""The codec turns every core message into bytes and back without loss."""

from __future__ import annotations

import os
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvraft._pb.kvraft.v1 import raft_pb2
from kvraft.core import types
from kvraft.core.types import (
    AppendEntries,
    AppendResponse,
    ConfState,
    Entry,
    EntryType,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    RequestVote,
    SnapshotMeta,
    TimeoutNow,
    VoteResponse,
)
from kvraft.transport import codec

EXAMPLES = 100 if os.environ.get("CI") else 500

u64 = st.integers(min_value=0, max_value=2**64 - 1)
small = st.integers(min_value=0, max_value=1000)
num = st.one_of(small, u64)
ids = st.frozensets(st.integers(min_value=1, max_value=2**64 - 1), max_size=5)

entries = st.builds(
    Entry, term=num, index=num, type=st.sampled_from(EntryType), data=st.binary(max_size=64)
)
conf_states = st.builds(ConfState, voters=ids, learners=ids, voters_outgoing=ids, removed=ids)
metas = st.builds(SnapshotMeta, index=num, term=num, conf_state=conf_states)
common = {"src": num, "dst": num, "term": num}

BY_KIND: dict[type, st.SearchStrategy[Message]] = {
    AppendEntries: st.builds(
        AppendEntries,
        **common,
        prev_index=num,
        prev_term=num,
        entries=st.lists(entries, max_size=5).map(tuple),
        commit=num,
    ),
    AppendResponse: st.builds(
        AppendResponse,
        **common,
        index=num,
        reject=st.booleans(),
        hint_index=num,
        hint_term=num,
    ),
    RequestVote: st.builds(
        RequestVote,
        **common,
        last_index=num,
        last_term=num,
        pre_vote=st.booleans(),
        transfer=st.booleans(),
    ),
    VoteResponse: st.builds(VoteResponse, **common, granted=st.booleans(), pre_vote=st.booleans()),
    Heartbeat: st.builds(Heartbeat, **common, commit=num, context=num),
    HeartbeatResponse: st.builds(HeartbeatResponse, **common, context=num),
    InstallSnapshot: st.builds(InstallSnapshot, **common, meta=metas),
    TimeoutNow: st.builds(TimeoutNow, **common),
}
messages: st.SearchStrategy[Message] = st.one_of(*BY_KIND.values())


def wire(batch: raft_pb2.MessageBatch) -> raft_pb2.MessageBatch:
    """What the receiver parses: the batch through its serialized bytes."""
    return raft_pb2.MessageBatch.FromString(batch.SerializeToString())


def test_the_tests_cover_every_core_message_kind() -> None:
    assert set(BY_KIND) == set(typing.get_args(types.Message))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(messages, max_size=20))
def test_batches_round_trip_through_bytes(msgs: list[Message]) -> None:
    assert codec.decode_batch(wire(codec.encode_batch(msgs))) == msgs


@settings(max_examples=EXAMPLES, deadline=None)
@given(messages)
def test_single_message_round_trip_and_kind(msg: Message) -> None:
    pb = raft_pb2.RaftMessage.FromString(codec.encode_message(msg).SerializeToString())
    back = codec.decode_message(pb)
    assert back == msg
    assert type(back) is type(msg)


@settings(max_examples=EXAMPLES, deadline=None)
@given(metas)
def test_snapshot_meta_round_trips(meta: SnapshotMeta) -> None:
    out = raft_pb2.SnapshotMeta()
    codec.encode_snapshot_meta(meta, out)
    assert (
        codec.decode_snapshot_meta(raft_pb2.SnapshotMeta.FromString(out.SerializeToString()))
        == meta
    )


def test_removed_ids_cross_the_wire_and_an_older_peer_means_none() -> None:
    cs = ConfState(voters=frozenset({1, 2, 6}), learners=frozenset({7}), removed=frozenset({3}))
    msg = InstallSnapshot(1, 7, 4, SnapshotMeta(10, 4, cs))
    assert codec.decode_batch(wire(codec.encode_batch([msg]))) == [msg]
    pb = raft_pb2.SnapshotMeta()
    codec.encode_snapshot_meta(msg.meta, pb)
    pb.conf_state.ClearField("removed")  # what a node from before the field sends
    assert codec.decode_snapshot_meta(pb).conf_state == ConfState(cs.voters, cs.learners)


def test_default_fields_survive() -> None:
    """Zero values are absent on the wire in proto3; they must come back, not vanish."""
    msgs: list[Message] = [
        AppendEntries(1, 2, 0, 0, 0, (Entry(0, 0),), 0),
        AppendResponse(1, 2, 3, 0),
        InstallSnapshot(1, 2, 3, SnapshotMeta()),
        Heartbeat(2, 1, 7, 0),
    ]
    assert codec.decode_batch(wire(codec.encode_batch(msgs))) == msgs


def test_an_empty_message_is_dropped_and_reported_but_the_rest_survives() -> None:
    batch = codec.encode_batch([TimeoutNow(1, 2, 3)])
    batch.messages.add()  # a kind this node does not know (or none at all)
    batch.messages.append(codec.encode_message(Heartbeat(1, 2, 3, 4)))
    errors: list[int] = []
    got = codec.decode_batch(wire(batch), on_error=lambda i, e: errors.append(i))
    assert got == [TimeoutNow(1, 2, 3), Heartbeat(1, 2, 3, 4)]
    assert errors == [1]


def test_an_unknown_entry_type_is_a_decode_error() -> None:
    batch = codec.encode_batch([AppendEntries(1, 2, 3, 0, 0, (Entry(3, 1),), 0)])
    batch.messages[0].append_entries.entries[0].type = 7  # open enum: a newer peer's type
    with pytest.raises(codec.DecodeError, match="unknown type 7"):
        codec.decode_message(wire(batch).messages[0])
    assert codec.decode_batch(wire(batch)) == []


def test_encoding_rejects_what_is_not_a_message_or_does_not_fit() -> None:
    with pytest.raises(TypeError, match="not a core Raft message"):
        codec.encode_batch([object()])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        codec.encode_batch([Heartbeat(1, 2, 2**64, 0)])
    with pytest.raises(ValueError):
        codec.encode_batch([Heartbeat(-1, 2, 3, 0)])


def test_message_size_counts_entry_payloads() -> None:
    small_msg = Heartbeat(1, 2, 3, 4)
    big = AppendEntries(1, 2, 3, 0, 0, (Entry(3, 1, data=b"x" * 1000),) * 3, 0)
    assert codec.message_size(big) >= 3000 > codec.message_size(small_msg)
    assert codec.message_size(big) >= len(codec.encode_message(big).SerializeToString())
