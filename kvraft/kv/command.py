"""Encoding of log commands and their results (``Command`` / ``CommandResult`` of kv.proto).

A NORMAL log entry's data is one serialized ``kvraft.v1.Command``; the session inside it is
authoritative (sessions inside the op are ignored).
"""

from __future__ import annotations

from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb

# gRPC status code numbers used in ApplyError (kv must not depend on grpc)
INVALID_ARGUMENT = 3
ABORTED = 10


def encode_command(request: Any, *, time_ms: int, session: Any = None) -> bytes:
    """Wrap a PutRequest, DeleteRangeRequest or TxnRequest into a serialized Command.

    ``session`` defaults to the request's own ``session`` field; ``time_ms`` is the
    proposing leader's wall clock (the log time that expires sessions)."""
    cmd = pb.Command(time_ms=time_ms)
    if isinstance(request, pb.PutRequest):
        cmd.put.CopyFrom(request)
    elif isinstance(request, pb.DeleteRangeRequest):
        cmd.delete_range.CopyFrom(request)
    elif isinstance(request, pb.TxnRequest):
        cmd.txn.CopyFrom(request)
    else:
        raise TypeError(f"not a write request: {type(request).__name__}")
    cmd.session.CopyFrom(request.session if session is None else session)
    return bytes(cmd.SerializeToString())


def error_result(code: int, message: str) -> Any:
    """A CommandResult carrying an ApplyError."""
    return pb.CommandResult(error=pb.ApplyError(code=code, message=message))


def decode_result(data: bytes) -> Any:
    """Inverse of serializing a CommandResult (for stored session results)."""
    return pb.CommandResult.FromString(data)
