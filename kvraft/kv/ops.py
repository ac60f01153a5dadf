"""The KV operations with etcd's revision semantics, over a state store view.

Revisions (kv.proto): the cluster revision grows by one with every applied command that
changes at least one key; all writes of one command (a txn's puts and deletes) carry that
same new revision ``rev``. A key's ``create_revision`` is the revision that created this
incarnation, ``mod_revision`` the one of its latest write, ``version`` the number of writes
since creation (1 after the first put). A delete ends the incarnation: a later put creates
the key anew with version 1.

These functions only read and write the given view; the caller (the state machine) owns
the transaction, the session table and the revision counter. Requests are validated
(``validate.py``) before they get here.
"""

from __future__ import annotations

from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.kv.validate import resolve_range
from kvraft.storage.state_base import KeyValue, StateReader, StateWriter


def to_pb(kv: KeyValue, *, keys_only: bool = False) -> Any:
    return pb.KeyValue(
        key=kv.key,
        value=b"" if keys_only else kv.value,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
    )


def read_range(r: StateReader, req: Any) -> Any:
    """A RangeResponse (without header) for a validated RangeRequest."""
    start, end = resolve_range(req.key, req.range_end, req.prefix)
    resp = pb.RangeResponse()
    if not req.range_end and not req.prefix:  # one key: a point lookup, no scan
        kv = r.get(req.key)
        resp.count = int(kv is not None)
        if kv is not None and not req.count_only:
            resp.kvs.append(to_pb(kv, keys_only=req.keys_only))
        return resp
    limit = 0 if req.count_only else req.limit
    result = r.range(start, end, limit=limit)
    resp.count = result.count
    if not req.count_only:
        resp.kvs.extend(to_pb(kv, keys_only=req.keys_only) for kv in result.kvs)
        resp.more = result.more
    return resp


def put(w: StateWriter, req: Any, rev: int) -> Any:
    """Write one key at revision ``rev``; returns the PutResponse (without header)."""
    old = w.get(req.key)
    if old is None:
        w.put(KeyValue(req.key, req.value, rev, rev, 1))
    else:
        w.put(KeyValue(req.key, req.value, old.create_revision, rev, old.version + 1))
    resp = pb.PutResponse()
    if req.prev_kv and old is not None:
        resp.prev_kv.CopyFrom(to_pb(old))
    return resp


def delete_range(w: StateWriter, req: Any) -> Any:
    """Delete the keys of the range; returns the DeleteRangeResponse (``deleted`` > 0 means
    the state changed)."""
    start, end = resolve_range(req.key, req.range_end, req.prefix)
    if not req.range_end and not req.prefix:
        one = w.get(req.key)
        gone = [] if one is None else [one]
    else:
        gone = w.range(start, end).kvs
    for kv in gone:
        w.delete(kv.key)
    resp = pb.DeleteRangeResponse(deleted=len(gone))
    if req.prev_kv:
        resp.prev_kvs.extend(to_pb(kv) for kv in gone)
    return resp


def compare(r: StateReader, c: Any) -> bool:
    """Evaluate one Compare; a missing key has value b"", version 0 and revisions 0."""
    kv = r.get(c.key)
    if c.target == pb.Compare.VALUE:
        have: bytes | int = b"" if kv is None else kv.value
        want: bytes | int = c.value
    elif c.target == pb.Compare.VERSION:
        have, want = (0 if kv is None else kv.version), c.version
    elif c.target == pb.Compare.CREATE:
        have, want = (0 if kv is None else kv.create_revision), c.create_revision
    else:
        have, want = (0 if kv is None else kv.mod_revision), c.mod_revision
    if c.result == pb.Compare.EQUAL:
        return have == want
    if c.result == pb.Compare.NOT_EQUAL:
        return have != want
    if c.result == pb.Compare.GREATER:
        return have > want  # type: ignore[operator]  # same type by construction
    return have < want  # type: ignore[operator]


def txn(w: StateWriter, req: Any, rev: int) -> tuple[Any, bool]:
    """Run a txn at revision ``rev``: the compares, then one branch, op by op (later ops
    see earlier ones). Returns (TxnResponse without header, whether any key changed)."""
    succeeded = all(compare(w, c) for c in req.compare)
    resp = pb.TxnResponse(succeeded=succeeded)
    changed = False
    for op in req.success if succeeded else req.failure:
        kind = op.WhichOneof("request")
        out = pb.ResponseOp()
        if kind == "range":
            out.range.CopyFrom(read_range(w, op.range))
        elif kind == "put":
            out.put.CopyFrom(put(w, op.put, rev))
            changed = True
        else:
            deleted = delete_range(w, op.delete_range)
            out.delete_range.CopyFrom(deleted)
            changed = changed or deleted.deleted > 0
        resp.responses.append(out)
    return resp, changed
