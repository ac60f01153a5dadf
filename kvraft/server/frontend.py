"""The KV request logic, independent of how a request arrived (unary call or Batch stream).

Reads: LINEARIZABLE -> ReadIndex barrier on the leader, then the local state; LEASE -> the
same with the leader lease (no heartbeat round while it holds); STALE -> the local state
at once, or, with ``max_staleness_ms``, only if this node can prove its state was current
within that bound (see kvraft/runtime/freshness.py), else TooStale.

Writes: validated against the node's limits, wrapped in a Command with the session and the
leader's wall clock, proposed through the driver, answered with the state machine's
result once the entry is applied on this node.

Every response header carries the node id, its term and the leader it knows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.kv.command import encode_command
from kvraft.kv.machine import KvStateMachine
from kvraft.kv.validate import (
    InvalidRequest,
    Limits,
    validate_delete_range,
    validate_put,
    validate_range,
    validate_txn,
)
from kvraft.runtime.driver import Driver
from kvraft.server.status import ApplyFailed, InvalidArgument, TooStale


class KvFrontend:
    def __init__(
        self,
        driver: Driver,
        machine: KvStateMachine,
        limits: Limits,
        address_of: Callable[[int], str],
        *,
        lease_reads: bool,
    ) -> None:
        self._driver = driver  # proposals and read barriers
        self._machine = machine  # local reads
        self._limits = limits  # request size limits (INVALID_ARGUMENT beyond)
        self._address_of = address_of  # node id -> client address, for leader hints
        self._lease_reads = lease_reads  # LEASE reads may use the lease (else ReadIndex)

    def header(self, h: Any) -> None:
        """Fill node id, term and leader into a ResponseHeader (revision left as is)."""
        d = self._driver
        h.node_id = d.node_id
        h.term = d.term
        h.leader_id = d.leader
        h.leader_addr = self._address_of(d.leader) if d.leader else ""

    # ------------------------------------------------------------------ reads
    async def range(self, req: Any) -> Any:
        _check(lambda: validate_range(req, self._limits))
        size = req.ByteSize()
        if size > self._limits.max_request_bytes:
            raise InvalidArgument(
                f"range: request is {size} bytes; the limit is "
                f"{self._limits.max_request_bytes} (max_request_bytes)"
            )
        if req.max_staleness_ms and req.consistency != pb.STALE:
            raise InvalidArgument("range: max_staleness_ms is only allowed with STALE reads")
        if req.consistency == pb.LINEARIZABLE:
            await self._driver.read_index()
        elif req.consistency == pb.LEASE:
            await self._driver.read_index(lease=self._lease_reads)
        elif req.max_staleness_ms:
            self._check_fresh(req.max_staleness_ms)
        resp = self._machine.range(req)
        self.header(resp.header)
        return resp

    def _check_fresh(self, max_staleness_ms: int) -> None:
        age = self._driver.staleness()
        if age is None:
            raise TooStale(
                f"node {self._driver.node_id} has not heard from a leader that its state is "
                f"current; it cannot serve a read bounded to {max_staleness_ms} ms: ask "
                "another node or use LINEARIZABLE"
            )
        if age * 1000 > max_staleness_ms:
            raise TooStale(
                f"node {self._driver.node_id} was last known current {age * 1000:.0f} ms ago, "
                f"more than max_staleness_ms = {max_staleness_ms}: ask another node or the "
                "leader"
            )

    # ------------------------------------------------------------------ writes
    async def put(self, req: Any) -> Any:
        return await self._write(req)

    async def delete_range(self, req: Any) -> Any:
        return await self._write(req)

    async def txn(self, req: Any) -> Any:
        return await self._write(req)

    async def _write(self, req: Any) -> Any:
        if isinstance(req, pb.PutRequest):
            _check(lambda: validate_put(req, self._limits))
        elif isinstance(req, pb.DeleteRangeRequest):
            _check(lambda: validate_delete_range(req, self._limits))
        else:
            _check(lambda: validate_txn(req, self._limits))
        if req.session.client_id and not req.session.seq:
            raise InvalidArgument("session: seq must be >= 1 when client_id is set")
        data = encode_command(req, time_ms=int(time.time() * 1000))
        if len(data) > self._limits.max_request_bytes:
            raise InvalidArgument(
                f"request is {len(data)} bytes; the limit is {self._limits.max_request_bytes} "
                "(max_request_bytes)"
            )
        result: Any = await self._driver.propose(data)
        kind = result.WhichOneof("result") if result is not None else None
        if kind is None:
            raise ApplyFailed(13, "the state machine returned no result")
        if kind == "error":
            raise ApplyFailed(result.error.code, result.error.message)
        out = getattr(result, kind)
        self.header(out.header)
        return out


def _check(validate: Callable[[], None]) -> None:
    try:
        validate()
    except InvalidRequest as exc:
        raise InvalidArgument(str(exc)) from exc
