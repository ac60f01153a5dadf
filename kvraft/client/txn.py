"""The transaction builder: compares and the operations of each branch.

    from kvraft.client import Cmp, Op

    result = await (client.txn()
                    .if_(Cmp.value("lock") == b"", Cmp.version("cfg") > 2)
                    .then(Op.put("lock", "me"), Op.get("cfg"))
                    .else_(Op.get("lock"))
                    .commit())

A missing key compares as value b"", version 0, create and mod revision 0. The whole
transaction is atomic and linearizable; its reads see the state at the point it applies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2
from kvraft.client.types import Bytesish, TxnResult, prefix_end, range_request, to_bytes

_TARGETS = {"value": "VALUE", "version": "VERSION", "create": "CREATE", "mod": "MOD"}
_RESULTS = {"==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}


@dataclass(frozen=True, slots=True)
class Compare:
    """One condition: ``<target of key> <op> <operand>``."""

    key: bytes
    target: str  # "value" | "version" | "create" | "mod"
    op: str  # "==" | "!=" | ">" | "<"
    operand: bytes | int  # bytes for "value", an int for the others

    def to_pb(self) -> Any:
        c = kv_pb2.Compare(key=self.key, target=_TARGETS[self.target], result=_RESULTS[self.op])
        if isinstance(self.operand, bytes):
            c.value = self.operand
        elif self.target == "version":
            c.version = self.operand
        elif self.target == "create":
            c.create_revision = self.operand
        else:
            c.mod_revision = self.operand
        return c

    def __str__(self) -> str:
        return f"{self.target}({self.key!r}) {self.op} {self.operand!r}"


@dataclass(frozen=True, slots=True)
class _Target:
    key: bytes
    target: str

    def _cmp(self, op: str, other: object) -> Compare:
        if self.target == "value":
            if not isinstance(other, str | bytes):
                raise TypeError(f"compare a value with str or bytes, not {type(other).__name__}")
            return Compare(self.key, self.target, op, to_bytes(other))
        if not isinstance(other, int) or isinstance(other, bool):
            raise TypeError(f"compare a {self.target} with an int, not {type(other).__name__}")
        return Compare(self.key, self.target, op, other)

    def __eq__(self, other: object) -> Compare:  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: object) -> Compare:  # type: ignore[override]
        return self._cmp("!=", other)

    def __gt__(self, other: object) -> Compare:
        return self._cmp(">", other)

    def __lt__(self, other: object) -> Compare:
        return self._cmp("<", other)

    __hash__ = None  # type: ignore[assignment]


class Cmp:
    """Factories for compare targets: ``Cmp.value(k) == b"v"``, ``Cmp.version(k) > 0``,
    ``Cmp.create(k) == 0`` (key absent), ``Cmp.mod(k) < rev``."""

    @staticmethod
    def value(key: Bytesish) -> _Target:
        return _Target(to_bytes(key), "value")

    @staticmethod
    def version(key: Bytesish) -> _Target:
        return _Target(to_bytes(key), "version")

    @staticmethod
    def create(key: Bytesish) -> _Target:
        return _Target(to_bytes(key), "create")

    @staticmethod
    def mod(key: Bytesish) -> _Target:
        return _Target(to_bytes(key), "mod")


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a branch; build with :meth:`get`, :meth:`put`, :meth:`delete`."""

    pb: Any  # the wire RequestOp

    @staticmethod
    def get(key: Bytesish, range_end: Bytesish = b"", *, prefix: bool = False, limit: int = 0,
            keys_only: bool = False) -> Op:
        req = range_request(to_bytes(key), to_bytes(range_end), prefix=prefix, limit=limit,
                            keys_only=keys_only)
        return Op(kv_pb2.RequestOp(range=req))

    @staticmethod
    def put(key: Bytesish, value: Bytesish, *, prev_kv: bool = False) -> Op:
        req = kv_pb2.PutRequest(key=to_bytes(key), value=to_bytes(value), prev_kv=prev_kv)
        return Op(kv_pb2.RequestOp(put=req))

    @staticmethod
    def delete(key: Bytesish, range_end: Bytesish = b"", *, prefix: bool = False,
               prev_kv: bool = False) -> Op:
        k, end = to_bytes(key), to_bytes(range_end)
        if prefix:
            k, end = k or b"\0", prefix_end(k) if k else b"\0"
        req = kv_pb2.DeleteRangeRequest(key=k, range_end=end, prev_kv=prev_kv)
        return Op(kv_pb2.RequestOp(delete_range=req))


@dataclass
class Txn:
    """A transaction being built; :meth:`commit` sends it (once)."""

    _send: Callable[[Any, float | None], Awaitable[TxnResult]]
    compares: list[Compare] = field(default_factory=list)
    success: list[Op] = field(default_factory=list)
    failure: list[Op] = field(default_factory=list)

    def if_(self, *compares: Compare) -> Txn:
        """Add conditions (all must hold for ``then``); none means "always"."""
        for c in compares:
            if not isinstance(c, Compare):
                raise TypeError(f"if_() takes Cmp conditions, got {type(c).__name__}")
        self.compares.extend(compares)
        return self

    def then(self, *ops: Op) -> Txn:
        """Operations run when every condition holds."""
        self.success.extend(ops)
        return self

    def else_(self, *ops: Op) -> Txn:
        """Operations run when some condition fails."""
        self.failure.extend(ops)
        return self

    def to_pb(self) -> Any:
        return kv_pb2.TxnRequest(
            compare=[c.to_pb() for c in self.compares],
            success=[o.pb for o in self.success],
            failure=[o.pb for o in self.failure],
        )

    async def commit(self, *, timeout: float | None = None) -> TxnResult:
        """Send the transaction (exactly once, like any write). Raises the client's
        typed errors (OutcomeUnknown, InvalidArgument, Unavailable...)."""
        return await self._send(self.to_pb(), timeout)
