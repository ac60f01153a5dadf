"""Request limits and validation of KV requests and commands.

Two levels, both deterministic:

- **Structure** (always, also while applying a command from the log): non-empty keys,
  known enum values, a compare whose value matches its target, exactly one op, a txn
  branch that does not write one key twice. A command failing these is answered with an
  INVALID_ARGUMENT result and changes nothing.
- **Size limits** (``Limits``; checked by the server before proposing, never while
  applying, because nodes may be configured differently and apply must not depend on a
  node's configuration).

Every failure raises :class:`InvalidRequest` whose message names the field and the limit;
the server maps it to ``INVALID_ARGUMENT``. Nothing is half-applied: validation happens
before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.errors import KvRaftError


class InvalidRequest(KvRaftError):
    """The request is malformed or exceeds a limit (gRPC INVALID_ARGUMENT). The message
    says which field and which limit; nothing was applied."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits a node enforces on client requests (configurable per node)."""

    max_key_bytes: int = 4096
    """Longest key (also keys of ranges and compares)."""
    max_value_bytes: int = 1 << 20
    """Largest value of a put."""
    max_txn_ops: int = 128
    """Most compares, and most ops in each txn branch (as etcd's --max-txn-ops)."""
    max_request_bytes: int = (1 << 20) + (1 << 19)
    """Largest encoded request (1.5 MiB, as etcd)."""


_COMPARE_FIELD = {
    pb.Compare.VALUE: "value",
    pb.Compare.VERSION: "version",
    pb.Compare.CREATE: "create_revision",
    pb.Compare.MOD: "mod_revision",
}


def resolve_range(key: bytes, range_end: bytes, prefix: bool) -> tuple[bytes, bytes | None]:
    """etcd range semantics -> [start, end) with end None meaning "no upper bound".

    ``range_end`` empty: just ``key`` (end = key + b"\\0"); ``b"\\0"``: every key >= key;
    ``prefix``: every key starting with ``key``."""
    if prefix:
        return key, prefix_end(key)
    if not range_end:
        return key, key + b"\0"
    if range_end == b"\0":
        return key, None
    return key, range_end


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None if there is
    none, i.e. the prefix is all 0xff bytes)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _check_size(where: str, what: str, size: int, limits: Limits | None, limit: str) -> None:
    """InvalidRequest if ``size`` exceeds the limit named ``limit`` (a Limits field)."""
    if limits is None:
        return
    allowed = getattr(limits, limit)
    if size > allowed:
        amount = f"{what} is {size} bytes" if limit.endswith("_bytes") else f"{size} {what}"
        raise InvalidRequest(f"{where}: {amount}; the limit is {allowed} ({limit})")


def _check_key(key: bytes, where: str, limits: Limits | None) -> None:
    if not key:
        raise InvalidRequest(f"{where}: key must not be empty")
    _check_size(where, "key", len(key), limits, "max_key_bytes")


def _check_enum(enum: Any, value: int, where: str) -> None:
    if value not in enum.values():
        raise InvalidRequest(f"{where}: unknown enum value {value}")


def _check_range_bounds(key: bytes, range_end: bytes, prefix: bool, where: str) -> None:
    if prefix and range_end:
        raise InvalidRequest(f"{where}: set either prefix or range_end, not both")


def validate_range(req: Any, limits: Limits | None, where: str = "range") -> None:
    """A RangeRequest (also inside a txn)."""
    _check_key(req.key, where, limits)
    _check_size(where, "range_end", len(req.range_end), limits, "max_key_bytes")
    _check_range_bounds(req.key, req.range_end, req.prefix, where)
    if req.limit < 0:
        raise InvalidRequest(f"{where}: limit must be >= 0, got {req.limit}")
    _check_enum(pb.ReadConsistency, req.consistency, f"{where}.consistency")


def validate_put(req: Any, limits: Limits | None, where: str = "put") -> None:
    _check_key(req.key, where, limits)
    _check_size(where, "value", len(req.value), limits, "max_value_bytes")


def validate_delete_range(req: Any, limits: Limits | None, where: str = "delete_range") -> None:
    _check_key(req.key, where, limits)
    _check_size(where, "range_end", len(req.range_end), limits, "max_key_bytes")
    _check_range_bounds(req.key, req.range_end, req.prefix, where)


def _validate_compare(c: Any, limits: Limits | None, where: str) -> None:
    _check_key(c.key, where, limits)
    _check_enum(pb.Compare.CompareResult, c.result, f"{where}.result")
    _check_enum(pb.Compare.CompareTarget, c.target, f"{where}.target")
    expected = _COMPARE_FIELD[c.target]
    if c.WhichOneof("target_union") != expected:
        target = pb.Compare.CompareTarget.Name(c.target)
        raise InvalidRequest(f"{where}: a compare on {target} must set {expected}")


def _validate_branch(ops: Any, limits: Limits | None, where: str) -> None:
    _check_size(where, "ops", len(ops), limits, "max_txn_ops")
    puts: set[bytes] = set()
    deletes: list[tuple[bytes, bytes | None]] = []
    for i, op in enumerate(ops):
        at = f"{where}[{i}]"
        kind = op.WhichOneof("request")
        if kind == "range":
            validate_range(op.range, limits, f"{at}.range")
        elif kind == "put":
            validate_put(op.put, limits, f"{at}.put")
            if op.put.key in puts:
                raise InvalidRequest(f"{at}.put: duplicate key {op.put.key[:64]!r} in one branch")
            puts.add(op.put.key)
        elif kind == "delete_range":
            d = op.delete_range
            validate_delete_range(d, limits, f"{at}.delete_range")
            deletes.append(resolve_range(d.key, d.range_end, d.prefix))
        else:
            raise InvalidRequest(f"{at}: no operation set")
    for key in puts:
        for start, end in deletes:
            if start <= key and (end is None or key < end):
                raise InvalidRequest(
                    f"{where}: key {key[:64]!r} is both put and deleted in one branch"
                )


def validate_txn(req: Any, limits: Limits | None, where: str = "txn") -> None:
    _check_size(where, "compares", len(req.compare), limits, "max_txn_ops")
    for i, c in enumerate(req.compare):
        _validate_compare(c, limits, f"{where}.compare[{i}]")
    _validate_branch(req.success, limits, f"{where}.success")
    _validate_branch(req.failure, limits, f"{where}.failure")


def validate_command(cmd: Any, limits: Limits | None) -> None:
    """A ``Command`` as proposed (limits given) or as applied (``limits=None``)."""
    if limits is not None:
        _check_size("command", "request", cmd.ByteSize(), limits, "max_request_bytes")
    if cmd.session.client_id and cmd.session.seq == 0:
        raise InvalidRequest("session: seq must be >= 1 when client_id is set")
    kind = cmd.WhichOneof("op")
    if kind == "put":
        validate_put(cmd.put, limits)
    elif kind == "delete_range":
        validate_delete_range(cmd.delete_range, limits)
    elif kind == "txn":
        validate_txn(cmd.txn, limits)
    else:
        raise InvalidRequest("command: no operation set")
