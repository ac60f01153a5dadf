"""Hypothesis: the state machine against a plain-dict model of etcd's semantics.

Random puts, deletes (single key, prefix, range, open range) and txns (compares on every
target, possibly invalid branches), some under client sessions with retries and stale
sequence numbers, applied in random batches with leader no-ops mixed in. After every batch
the results and the whole state must equal the model's."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.core.types import Entry
from kvraft.kv.command import ABORTED, INVALID_ARGUMENT, encode_command

from .conftest import MachineFactory
from .helpers import cmp, delete, op, put

CI = bool(os.environ.get("CI"))
KEYS = [b"a", b"ab", b"abc", b"b", b"ba", b"c", b"\xff"]
key_st = st.sampled_from(KEYS)
value_st = st.sampled_from([b"", b"x", b"y"])

Kv = tuple[bytes, bytes, int, int, int]  # key, value, create, mod, version


# ---------------------------------------------------------------- generated requests
@st.composite
def delete_st(draw: st.DrawFn) -> Any:
    form = draw(st.sampled_from(["single", "prefix", "range", "from"]))
    key = draw(key_st)
    if form == "prefix":
        return delete(key, prefix=True, prev_kv=True)
    if form == "range":
        return delete(key, draw(key_st), prev_kv=True)
    if form == "from":
        return delete(key, b"\0", prev_kv=True)
    return delete(key, prev_kv=True)


@st.composite
def compare_st(draw: st.DrawFn) -> Any:
    target = draw(st.sampled_from(["VALUE", "VERSION", "CREATE", "MOD"]))
    result = draw(st.sampled_from(["EQUAL", "NOT_EQUAL", "GREATER", "LESS"]))
    value = draw(value_st) if target == "VALUE" else draw(st.integers(0, 6))
    return cmp(draw(key_st), target, result, value)


put_st = st.builds(lambda k, v: put(k, v, prev_kv=True), key_st, value_st)
range_st = st.builds(lambda k, p: pb.RangeRequest(key=k, prefix=p), key_st, st.booleans())
branch_st = st.lists(st.one_of(put_st, delete_st(), range_st), max_size=3)
txn_st = st.builds(
    lambda c, s, f: pb.TxnRequest(
        compare=c, success=[op(r) for r in s], failure=[op(r) for r in f]
    ),
    st.lists(compare_st(), max_size=3),
    branch_st,
    branch_st,
)
request_st = st.one_of(put_st, delete_st(), txn_st)
session_st = st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(["next", "retry", "stale"]))


# ---------------------------------------------------------------- the model
def matches(key: bytes, req: Any) -> bool:
    """Does ``key`` fall in the (etcd-style) range of a range/delete request?"""
    if req.prefix:
        return key.startswith(req.key)
    if not req.range_end:
        return key == req.key
    if req.range_end == b"\0":
        return key >= req.key
    return req.key <= key < req.range_end


@dataclass
class Model:
    kvs: dict[bytes, Kv] = field(default_factory=dict)
    revision: int = 0

    def scan(self, req: Any) -> list[Kv]:
        return [self.kvs[k] for k in sorted(self.kvs) if matches(k, req)]

    def put(self, key: bytes, value: bytes, rev: int) -> Kv | None:
        old = self.kvs.get(key)
        self.kvs[key] = (key, value, old[2], rev, old[4] + 1) if old else (key, value, rev, rev, 1)
        return old

    def delete(self, req: Any) -> list[Kv]:
        gone = self.scan(req)
        for kv in gone:
            del self.kvs[kv[0]]
        return gone

    def holds(self, c: Any) -> bool:
        kv = self.kvs.get(c.key)
        have: Any = {
            pb.Compare.VALUE: kv[1] if kv else b"",
            pb.Compare.VERSION: kv[4] if kv else 0,
            pb.Compare.CREATE: kv[2] if kv else 0,
            pb.Compare.MOD: kv[3] if kv else 0,
        }[c.target]
        want = getattr(c, c.WhichOneof("target_union"))
        return {
            pb.Compare.EQUAL: have == want,
            pb.Compare.NOT_EQUAL: have != want,
            pb.Compare.GREATER: have > want,
            pb.Compare.LESS: have < want,
        }[c.result]

    @staticmethod
    def branch_invalid(ops: Any) -> bool:
        puts = [o.put.key for o in ops if o.WhichOneof("request") == "put"]
        dels = [o.delete_range for o in ops if o.WhichOneof("request") == "delete_range"]
        return len(set(puts)) < len(puts) or any(matches(k, d) for k in puts for d in dels)

    def apply(self, req: Any) -> tuple[Any, ...]:
        rev = self.revision + 1
        if isinstance(req, pb.PutRequest):
            self.revision = rev
            return ("put", rev, self.put(req.key, req.value, rev))
        if isinstance(req, pb.DeleteRangeRequest):
            gone = self.delete(req)
            self.revision = rev if gone else self.revision
            return ("delete", self.revision, len(gone), gone)
        if self.branch_invalid(req.success) or self.branch_invalid(req.failure):
            return ("error", INVALID_ARGUMENT)
        ok = all(self.holds(c) for c in req.compare)
        out: list[tuple[Any, ...]] = []
        changed = False
        for o in req.success if ok else req.failure:
            kind = o.WhichOneof("request")
            if kind == "put":
                out.append(("put", self.put(o.put.key, o.put.value, rev)))
                changed = True
            elif kind == "delete_range":
                gone = self.delete(o.delete_range)
                out.append(("delete", len(gone)))
                changed = changed or bool(gone)
            else:
                found = self.scan(o.range)
                out.append(("range", found, len(found)))
        self.revision = rev if changed else self.revision
        return ("txn", self.revision, ok, out)


def kvt(kv: Any) -> Kv:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version)


def summarize(r: Any) -> tuple[Any, ...]:
    """The machine's CommandResult in the model's terms."""
    kind = r.WhichOneof("result")
    if kind == "error":
        return ("error", r.error.code)
    if kind == "put":
        return (
            "put",
            r.put.header.revision,
            kvt(r.put.prev_kv) if r.put.HasField("prev_kv") else None,
        )
    if kind == "delete_range":
        d = r.delete_range
        return ("delete", d.header.revision, d.deleted, [kvt(kv) for kv in d.prev_kvs])
    out: list[tuple[Any, ...]] = []
    for resp in r.txn.responses:
        k = resp.WhichOneof("response")
        if k == "put":
            p = resp.put
            out.append(("put", kvt(p.prev_kv) if p.HasField("prev_kv") else None))
        elif k == "delete_range":
            out.append(("delete", resp.delete_range.deleted))
        else:
            out.append(("range", [kvt(kv) for kv in resp.range.kvs], resp.range.count))
    return ("txn", r.txn.header.revision, r.txn.succeeded, out)


# ---------------------------------------------------------------- the property
@settings(
    max_examples=40 if CI else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(st.tuples(request_st, session_st, st.booleans()), min_size=1, max_size=30),
    cuts=st.sets(st.integers(1, 40), max_size=6),
)
def test_machine_matches_the_model(
    make_machine: MachineFactory,
    steps: list[tuple[Any, tuple[int, str], bool]],
    cuts: set[int],
) -> None:
    machine = make_machine()
    model = Model()
    sessions: dict[int, tuple[int, tuple[Any, ...]]] = {}  # client -> (last seq, its result)
    entries: list[Entry] = []
    expected: list[tuple[Any, ...] | None] = []
    for request, (client, mode), noop_first in steps:
        if noop_first:
            entries.append(Entry(term=1, index=len(entries) + 1))
            expected.append(None)
        last = sessions.get(client, (0, ()))
        if client and mode == "retry" and last[0]:
            seq, want = last[0], last[1]
        elif client and mode == "stale" and last[0] >= 2:
            seq, want = last[0] - 1, ("error", ABORTED)
        else:
            seq = last[0] + 1 if client else 0
            want = model.apply(request)
            if client:
                sessions[client] = (seq, want)
        session = pb.Session(client_id=client, seq=seq)
        data = encode_command(request, time_ms=1, session=session)
        entries.append(Entry(term=1, index=len(entries) + 1, data=data))
        expected.append(want)

    bounds = [0, *sorted(c for c in cuts if c < len(entries)), len(entries)]
    got: list[tuple[Any, ...] | None] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        got.extend(None if r is None else summarize(r) for r in machine.apply(entries[lo:hi]))
    assert got == expected

    everything = machine.range(pb.RangeRequest(key=b"\0", range_end=b"\0"))
    assert [kvt(kv) for kv in everything.kvs] == [model.kvs[k] for k in sorted(model.kvs)]
    assert everything.header.revision == model.revision
    assert machine.applied() == (len(entries), 1)
