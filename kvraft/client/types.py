"""Plain result types of the client API, converted from the wire messages.

Keys and values are ``bytes``; the client accepts ``str`` too and encodes it as UTF-8.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2

Bytesish = str | bytes


def to_bytes(x: Bytesish) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (b"\\0" if none:
    "to the end of the key space")."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


class Consistency(enum.IntEnum):
    """How fresh a read must be (values match the wire enum)."""

    LINEARIZABLE = 0
    """Default: the leader confirms its leadership first; sees every acknowledged write."""
    LEASE = 1
    """The leader answers while its lease holds; linearizable unless clocks misbehave."""
    STALE = 2
    """Any node answers from its own state; may miss recent writes."""

    @classmethod
    def parse(cls, value: Consistency | str) -> Consistency:
        if isinstance(value, Consistency):
            return value
        try:
            return cls[value.upper()]
        except KeyError:
            names = ", ".join(c.name.lower() for c in cls)
            raise ValueError(f"unknown consistency {value!r} (choose one of {names})") from None


@dataclass(frozen=True, slots=True)
class Header:
    revision: int  # cluster revision the answer reflects
    node_id: int  # node that answered
    term: int  # its term
    leader_id: int  # leader it knows of, 0 if none

    @staticmethod
    def from_pb(h: Any) -> Header:
        return Header(h.revision, h.node_id, h.term, h.leader_id)


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes  # empty for keys_only reads
    create_revision: int  # revision that created the key
    mod_revision: int  # revision of its latest change
    version: int  # writes since creation, 1 after the first put

    @staticmethod
    def from_pb(kv: Any) -> KeyValue:
        return KeyValue(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version)


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]  # in key order
    more: bool  # True if the limit cut the result short
    count: int  # keys in the range, regardless of limit
    header: Header

    @staticmethod
    def from_pb(r: Any) -> RangeResult:
        return RangeResult([KeyValue.from_pb(kv) for kv in r.kvs], r.more, r.count,
                           Header.from_pb(r.header))


@dataclass(frozen=True, slots=True)
class PutResult:
    header: Header
    prev_kv: KeyValue | None  # the previous key-value, if asked for and it existed

    @staticmethod
    def from_pb(r: Any) -> PutResult:
        prev = KeyValue.from_pb(r.prev_kv) if r.HasField("prev_kv") else None
        return PutResult(Header.from_pb(r.header), prev)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: int  # number of keys deleted
    prev_kvs: list[KeyValue]  # the deleted key-values, if asked for
    header: Header

    @staticmethod
    def from_pb(r: Any) -> DeleteResult:
        return DeleteResult(r.deleted, [KeyValue.from_pb(kv) for kv in r.prev_kvs],
                            Header.from_pb(r.header))


OpResult = RangeResult | PutResult | DeleteResult


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool  # True if every compare held and the `then` branch ran
    responses: list[OpResult]  # one per op of the branch that ran, in order
    header: Header

    @staticmethod
    def from_pb(r: Any) -> TxnResult:
        out: list[OpResult] = []
        for op in r.responses:
            kind = op.WhichOneof("response")
            if kind == "range":
                out.append(RangeResult.from_pb(op.range))
            elif kind == "put":
                out.append(PutResult.from_pb(op.put))
            else:
                out.append(DeleteResult.from_pb(op.delete_range))
        return TxnResult(r.succeeded, out, Header.from_pb(r.header))


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    address: str
    learner: bool  # a learner receives the log but does not vote

    @staticmethod
    def from_pb(m: Any) -> Member:
        return Member(m.id, m.address, m.learner)


ROLE_NAMES = {0: "follower", 1: "pre-candidate", 2: "candidate", 3: "leader", 4: "learner"}


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node's own view, from its Admin Status."""

    id: int
    address: str
    role: str  # "leader", "follower", "candidate", "pre-candidate", "learner"
    term: int
    leader_id: int  # 0 if none known
    leader_addr: str
    commit_index: int
    applied_index: int
    log_first: int  # first index held in the log
    log_last: int  # last index held in the log
    snapshot_index: int
    membership: list[Member]
    db_size_bytes: int
    healthy: bool  # knows a leader and storage is sound
    health_detail: str  # why not healthy ("" when healthy)
    revision: int
    version: str
    cluster_id: str

    @staticmethod
    def from_pb(r: Any) -> NodeStatus:
        return NodeStatus(
            id=r.id, address=r.address, role=ROLE_NAMES.get(r.role, str(r.role)), term=r.term,
            leader_id=r.leader_id, leader_addr=r.leader_addr, commit_index=r.commit_index,
            applied_index=r.applied_index, log_first=r.log_first, log_last=r.log_last,
            snapshot_index=r.snapshot_index,
            membership=[Member.from_pb(m) for m in r.membership],
            db_size_bytes=r.db_size_bytes, healthy=r.healthy, health_detail=r.health_detail,
            revision=r.revision, version=r.version, cluster_id=r.cluster_id,
        )


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    index: int  # last log index the snapshot includes
    term: int  # its term
    size_bytes: int


def range_request(key: bytes, range_end: bytes = b"", *, prefix: bool = False, limit: int = 0,
                  keys_only: bool = False, count_only: bool = False,
                  consistency: Consistency = Consistency.LINEARIZABLE,
                  max_staleness_ms: int = 0) -> Any:
    """A wire RangeRequest (a prefix is sent as an explicit [prefix, prefix_end) range so
    paging can move the start key)."""
    if prefix:
        range_end = prefix_end(key) if key else b"\0"
        key = key or b"\0"
    return kv_pb2.RangeRequest(
        key=key, range_end=range_end, limit=limit, keys_only=keys_only,
        count_only=count_only, consistency=consistency.name, max_staleness_ms=max_staleness_ms,
    )
