"""Core message dataclasses <-> protobuf (proto/kvraft/v1/raft.proto).

The only place that knows both shapes. Encoding writes fields straight into a message
that already sits inside its parent (``batch.messages.add()``), because with the upb
runtime every constructor call and every sub-message copy costs more than a plain field
store; decoding reads fields positionally into the frozen dataclasses.

Contracts
- ``encode_batch(msgs)`` accepts any sequence of core messages and never fails for a
  well-formed one (ids, terms and indexes are ints in [0, 2**64)); it raises TypeError
  for an object that is not a core message and ValueError for an int outside uint64.
- ``decode_message(pb)`` returns the core message or raises :class:`DecodeError` (a
  ValueError) for a message with no kind set or an unknown entry type. A receiver logs
  and drops such a message; it never raises into the Raft loop.
- ``decode_message(encode(m)) == m`` for every core message ``m`` (round trip tested).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kvraft._pb.kvraft.v1 import raft_pb2
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

__all__ = [
    "DecodeError",
    "decode_batch",
    "decode_conf_state",
    "decode_install_snapshot",
    "decode_message",
    "decode_snapshot_meta",
    "encode_batch",
    "encode_conf_state",
    "encode_install_snapshot",
    "encode_into",
    "encode_message",
    "encode_snapshot_meta",
    "message_size",
]

PbMessage = Any
"""A generated protobuf message (the generated modules are untyped for mypy)."""


class DecodeError(ValueError):
    """A peer sent a message this node cannot turn into a core message."""


# ============================================================================ shared parts
def encode_conf_state(cs: ConfState, out: PbMessage) -> None:
    """Write ``cs`` into a ``raft_pb2.ConfState`` (ids sorted, so encoding is stable)."""
    out.voters.extend(sorted(cs.voters))
    out.learners.extend(sorted(cs.learners))
    out.voters_outgoing.extend(sorted(cs.voters_outgoing))
    out.removed.extend(sorted(cs.removed))


def decode_conf_state(pb: PbMessage) -> ConfState:
    return ConfState(
        voters=frozenset(pb.voters),
        learners=frozenset(pb.learners),
        voters_outgoing=frozenset(pb.voters_outgoing),
        removed=frozenset(pb.removed),
    )


def encode_snapshot_meta(meta: SnapshotMeta, out: PbMessage) -> None:
    """Write ``meta`` into a ``raft_pb2.SnapshotMeta``."""
    out.index = meta.index
    out.term = meta.term
    encode_conf_state(meta.conf_state, out.conf_state)


def decode_snapshot_meta(pb: PbMessage) -> SnapshotMeta:
    return SnapshotMeta(pb.index, pb.term, decode_conf_state(pb.conf_state))


_ENTRY_TYPES: dict[int, EntryType] = {int(t): t for t in EntryType}


def _decode_entry(e: PbMessage) -> Entry:
    etype = _ENTRY_TYPES.get(e.type)
    if etype is None:
        raise DecodeError(f"entry {e.index} has unknown type {e.type}")
    return Entry(e.term, e.index, etype, e.data)


# ============================================================================ encoders
def _enc_append(m: AppendEntries, out: PbMessage) -> None:
    p = out.append_entries
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.prev_index = m.prev_index
    p.prev_term = m.prev_term
    p.commit = m.commit
    add = p.entries.add
    for e in m.entries:
        add(term=e.term, index=e.index, type=e.type, data=e.data)


def _enc_append_resp(m: AppendResponse, out: PbMessage) -> None:
    p = out.append_response
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.index = m.index
    p.reject = m.reject
    p.hint_index = m.hint_index
    p.hint_term = m.hint_term


def _enc_vote(m: RequestVote, out: PbMessage) -> None:
    p = out.request_vote
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.last_index = m.last_index
    p.last_term = m.last_term
    p.pre_vote = m.pre_vote
    p.transfer = m.transfer


def _enc_vote_resp(m: VoteResponse, out: PbMessage) -> None:
    p = out.vote_response
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.granted = m.granted
    p.pre_vote = m.pre_vote


def _enc_heartbeat(m: Heartbeat, out: PbMessage) -> None:
    p = out.heartbeat
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.commit = m.commit
    p.context = m.context


def _enc_heartbeat_resp(m: HeartbeatResponse, out: PbMessage) -> None:
    p = out.heartbeat_response
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    p.context = m.context


def encode_install_snapshot(m: InstallSnapshot, p: PbMessage) -> None:
    """Write ``m`` into a ``raft_pb2.InstallSnapshot`` (e.g. a SnapshotChunk's header)."""
    p.src = m.src
    p.dst = m.dst
    p.term = m.term
    encode_snapshot_meta(m.meta, p.meta)


def _enc_snapshot(m: InstallSnapshot, out: PbMessage) -> None:
    encode_install_snapshot(m, out.install_snapshot)


def _enc_timeout_now(m: TimeoutNow, out: PbMessage) -> None:
    p = out.timeout_now
    p.src = m.src
    p.dst = m.dst
    p.term = m.term


_ENCODERS: dict[type, Callable[[Any, PbMessage], None]] = {
    AppendEntries: _enc_append,
    AppendResponse: _enc_append_resp,
    RequestVote: _enc_vote,
    VoteResponse: _enc_vote_resp,
    Heartbeat: _enc_heartbeat,
    HeartbeatResponse: _enc_heartbeat_resp,
    InstallSnapshot: _enc_snapshot,
    TimeoutNow: _enc_timeout_now,
}


def encode_into(msg: Message, out: PbMessage) -> None:
    """Write ``msg`` into an empty ``raft_pb2.RaftMessage`` (e.g. ``batch.messages.add()``).

    Raises TypeError if ``msg`` is not a core message, ValueError if a field does not fit
    in uint64.
    """
    enc = _ENCODERS.get(type(msg))
    if enc is None:
        raise TypeError(f"not a core Raft message: {type(msg).__name__}")
    enc(msg, out)


def encode_message(msg: Message) -> PbMessage:
    """``msg`` as a new ``raft_pb2.RaftMessage``."""
    out = raft_pb2.RaftMessage()
    encode_into(msg, out)
    return out


def encode_batch(msgs: Iterable[Message]) -> PbMessage:
    """``msgs`` as one ``raft_pb2.MessageBatch``, in order."""
    batch = raft_pb2.MessageBatch()
    add = batch.messages.add
    for msg in msgs:
        encode_into(msg, add())
    return batch


# ============================================================================ decoders
def _dec_append(p: PbMessage) -> AppendEntries:
    return AppendEntries(
        p.src,
        p.dst,
        p.term,
        p.prev_index,
        p.prev_term,
        tuple([_decode_entry(e) for e in p.entries]),
        p.commit,
    )


def _dec_append_resp(p: PbMessage) -> AppendResponse:
    return AppendResponse(p.src, p.dst, p.term, p.index, p.reject, p.hint_index, p.hint_term)


def _dec_vote(p: PbMessage) -> RequestVote:
    return RequestVote(p.src, p.dst, p.term, p.last_index, p.last_term, p.pre_vote, p.transfer)


def _dec_vote_resp(p: PbMessage) -> VoteResponse:
    return VoteResponse(p.src, p.dst, p.term, p.granted, p.pre_vote)


def _dec_heartbeat(p: PbMessage) -> Heartbeat:
    return Heartbeat(p.src, p.dst, p.term, p.commit, p.context)


def _dec_heartbeat_resp(p: PbMessage) -> HeartbeatResponse:
    return HeartbeatResponse(p.src, p.dst, p.term, p.context)


def decode_install_snapshot(p: PbMessage) -> InstallSnapshot:
    """The core message in a ``raft_pb2.InstallSnapshot``."""
    return InstallSnapshot(p.src, p.dst, p.term, decode_snapshot_meta(p.meta))


def _dec_timeout_now(p: PbMessage) -> TimeoutNow:
    return TimeoutNow(p.src, p.dst, p.term)


_DECODERS: dict[str, Callable[[PbMessage], Message]] = {
    "append_entries": _dec_append,
    "append_response": _dec_append_resp,
    "request_vote": _dec_vote,
    "vote_response": _dec_vote_resp,
    "heartbeat": _dec_heartbeat,
    "heartbeat_response": _dec_heartbeat_resp,
    "install_snapshot": decode_install_snapshot,
    "timeout_now": _dec_timeout_now,
}


def decode_message(pb: PbMessage) -> Message:
    """The core message in a ``raft_pb2.RaftMessage``; DecodeError if it holds none or
    holds something malformed."""
    kind = pb.WhichOneof("msg")
    if kind is None:
        raise DecodeError("RaftMessage has no message set (unknown kind from a newer peer?)")
    return _DECODERS[kind](getattr(pb, kind))


def decode_batch(
    batch: PbMessage, on_error: Callable[[int, DecodeError], None] | None = None
) -> list[Message]:
    """Every message of a ``raft_pb2.MessageBatch`` that decodes, in order.

    A message that fails to decode is left out and reported to ``on_error(position,
    error)``; the rest of the batch still counts.
    """
    out: list[Message] = []
    append = out.append
    for i, pb in enumerate(batch.messages):
        try:
            append(decode_message(pb))
        except DecodeError as exc:
            if on_error is not None:
                on_error(i, exc)
    return out


# ============================================================================ sizing
_FIXED_SIZE = 48
"""Generous upper bound of a non-AppendEntries message's encoded size, in bytes."""


def message_size(msg: Message) -> int:
    """Approximate encoded size of ``msg`` in bytes, for batching and queue bounds."""
    if type(msg) is AppendEntries:
        return _FIXED_SIZE + sum([len(e.data) + 24 for e in msg.entries])
    return _FIXED_SIZE
