"""Building log entries of KV commands for the state machine tests."""

from __future__ import annotations

from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.core.types import Entry
from kvraft.kv.command import encode_command


class Log:
    """Hands out entries with consecutive indexes (term 1), like a committed log."""

    def __init__(self, start: int = 1, term: int = 1) -> None:
        self.next_index = start
        self.term = term
        self.time_ms = 1_000

    def entry(self, data: bytes = b"") -> Entry:
        e = Entry(term=self.term, index=self.next_index, data=data)
        self.next_index += 1
        return e

    def cmd(
        self, request: Any, *, client: int = 0, seq: int = 0, time_ms: int | None = None
    ) -> Entry:
        if time_ms is not None:
            self.time_ms = time_ms
        session = pb.Session(client_id=client, seq=seq)
        return self.entry(encode_command(request, time_ms=self.time_ms, session=session))


def put(key: bytes, value: bytes = b"v", prev_kv: bool = False) -> Any:
    return pb.PutRequest(key=key, value=value, prev_kv=prev_kv)


def delete(key: bytes, range_end: bytes = b"", prefix: bool = False, prev_kv: bool = False) -> Any:
    return pb.DeleteRangeRequest(key=key, range_end=range_end, prefix=prefix, prev_kv=prev_kv)


def cmp(key: bytes, target: str, result: str, value: Any) -> Any:
    field = {
        "VALUE": "value",
        "VERSION": "version",
        "CREATE": "create_revision",
        "MOD": "mod_revision",
    }[target]
    return pb.Compare(
        key=key,
        target=getattr(pb.Compare, target),
        result=getattr(pb.Compare, result),
        **{field: value},
    )


def op(request: Any) -> Any:
    if isinstance(request, pb.PutRequest):
        return pb.RequestOp(put=request)
    if isinstance(request, pb.DeleteRangeRequest):
        return pb.RequestOp(delete_range=request)
    return pb.RequestOp(range=request)


def txn(compare: list[Any], success: list[Any], failure: list[Any] | None = None) -> Any:
    return pb.TxnRequest(
        compare=compare, success=[op(r) for r in success], failure=[op(r) for r in failure or []]
    )


def kv_tuple(kv: Any) -> tuple[bytes, bytes, int, int, int]:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version)
