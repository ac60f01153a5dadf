"""The KV request logic, independent of how a request arrived (unary call or Batch stream).

Reads: LINEARIZABLE -> ReadIndex barrier on the leader, then the local state; LEASE -> the
same with the leader lease (no heartbeat round while it holds); STALE -> the local state
at once, or, with ``max_staleness_ms``, only if this node can prove its state was current
within that bound, by a linearizable round trip it started itself (kvraft/server/bounded.py),
else TooStale.

Writes: validated against the node's limits, wrapped in a Command with the session and the
leader's wall clock, proposed through the driver, answered with the state machine's
result once the entry is applied on this node.

Every response header carries the node id, its term and the leader it knows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft._pb.kvraft.v1 import kv_pb2_grpc
from kvraft.core.types import Role
from kvraft.errors import NotLeader
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
from kvraft.runtime.errors import DriverStopped
from kvraft.server.bounded import FreshnessProof
from kvraft.server.status import ApplyFailed, InvalidArgument, TooStale

CONFIRM_TIMEOUT_S = 2.0
"""Deadline of the leader round trip that proves a follower's state fresh."""


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
        # proofs for bounded-staleness reads, and the channels to leaders they use
        self._fresh = FreshnessProof(self._confirm_revision, lambda: machine.position().revision)
        self._channels: dict[str, Any] = {}  # leader address -> grpc.aio channel

    async def close(self) -> None:
        """Close the channels opened to leaders (bounded-staleness proofs)."""
        channels, self._channels = list(self._channels.values()), {}
        for ch in channels:
            await ch.close()

    def header(self, h: Any) -> None:
        """Fill node id, term and leader into a ResponseHeader (revision left as is)."""
        d = self._driver
        h.node_id = d.node_id
        h.term = d.term
        h.leader_id = d.leader
        h.leader_addr = self._address_of(d.leader) if d.leader else ""

    # ------------------------------------------------------------------ async API
    async def range(self, req: Any) -> Any:
        return await _wait(self.start_range, req)

    async def put(self, req: Any) -> Any:
        return await _wait(self.start_write, req)

    async def delete_range(self, req: Any) -> Any:
        return await _wait(self.start_write, req)

    async def txn(self, req: Any) -> Any:
        return await _wait(self.start_write, req)

    # ------------------------------------------------------------------ reads
    def start_range(self, req: Any, done: Done) -> None:
        """Serve a RangeRequest; ``done(response, None)`` or ``done(None, error)`` is
        called exactly once, possibly before this returns."""
        try:
            _check(lambda: validate_range(req, self._limits))
            size = req.ByteSize()
            if size > self._limits.max_request_bytes:
                raise InvalidArgument(
                    f"range: request is {size} bytes; the limit is "
                    f"{self._limits.max_request_bytes} (max_request_bytes)"
                )
            if req.max_staleness_ms and req.consistency != pb.STALE:
                raise InvalidArgument("range: max_staleness_ms is only allowed with STALE reads")
            if req.consistency == pb.STALE:
                bound = req.max_staleness_ms
                if not bound or self._fresh.fresh_within(bound / 1000):
                    done(self._serve_range(req), None)
                else:  # wait for the confirmation (started by fresh_within), then decide
                    self._fresh.refresh().add_done_callback(
                        lambda _f: self._finish_bounded(req, bound, done)
                    )
                return
            lease = req.consistency == pb.LEASE and self._lease_reads
            barrier = self._driver.read_index_nowait(lease=lease)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            done(None, exc)
            return
        barrier.add_done_callback(lambda f: _settle(f, done, lambda _i: self._serve_range(req)))

    def _serve_range(self, req: Any) -> Any:
        resp = self._machine.range(req)
        self.header(resp.header)
        return resp

    def _finish_bounded(self, req: Any, max_staleness_ms: int, done: Done) -> None:
        age = self._fresh.age()
        if age is not None and age * 1000 <= max_staleness_ms:
            try:
                resp = self._serve_range(req)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                done(None, exc)
                return
            done(resp, None)
            return
        me = self._driver.node_id
        if age is None:
            err = self._fresh.last_error
            why = f": {err}" if err is not None else ""
            msg = (f"node {me} cannot prove its state current (no linearizable confirmation "
                   f"from a leader covers it{why})")
        else:
            msg = f"node {me} was last proven current {age * 1000:.0f} ms ago"
        done(None, TooStale(
            f"{msg}; it cannot serve a read bounded to {max_staleness_ms} ms: ask another "
            "node or use LINEARIZABLE"
        ))

    async def _confirm_revision(self) -> int:
        """A revision R such that every write committed before this call has a revision
        <= R (see kvraft/server/bounded.py): the leader's state after a ReadIndex barrier,
        asked of the leader over gRPC when this node is not the leader."""
        d = self._driver
        if d.role == Role.LEADER:
            await d.read_index()
            return self._machine.position().revision
        if not d.leader:
            raise NotLeader(0, "no leader known")
        address = self._address_of(d.leader)
        if not address:
            raise NotLeader(d.leader, f"no address known for leader {d.leader}")
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        probe = pb.RangeRequest(key=b"\0", count_only=True, consistency=pb.LINEARIZABLE)
        resp = await kv_pb2_grpc.KVStub(channel).Range(probe, timeout=CONFIRM_TIMEOUT_S)
        return int(resp.header.revision)

    # ------------------------------------------------------------------ writes
    def start_write(self, req: Any, done: Done) -> None:
        """Propose a PutRequest, DeleteRangeRequest or TxnRequest; ``done`` as above,
        called once the command is applied on this node (or failed)."""
        try:
            data = self._encode_write(req)
            applied = self._driver.propose_nowait(data)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            done(None, exc)
            return
        applied.add_done_callback(lambda f: _settle(f, done, self._write_response))

    def _encode_write(self, req: Any) -> bytes:
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
        return data

    def _write_response(self, result: Any) -> Any:
        kind = result.WhichOneof("result") if result is not None else None
        if kind is None:
            raise ApplyFailed(13, "the state machine returned no result")
        if kind == "error":
            raise ApplyFailed(result.error.code, result.error.message)
        out = getattr(result, kind)
        self.header(out.header)
        return out


Done = Callable[[Any, BaseException | None], None]
"""Completion callback: (response, None) on success, (None, error) on failure."""


def _settle(fut: asyncio.Future[Any], done: Done, respond: Callable[[Any], Any]) -> None:
    """Finish a request whose driver future ``fut`` completed."""
    if fut.cancelled():
        done(None, DriverStopped("the request was cancelled"))
        return
    exc = fut.exception()
    if exc is not None:
        done(None, exc)
        return
    try:
        resp = respond(fut.result())
    except Exception as err:  # noqa: BLE001 - handed to the caller
        done(None, err)
        return
    done(resp, None)


async def _wait(start: Callable[[Any, Done], None], req: Any) -> Any:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def done(resp: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(resp)

    start(req, done)
    return await fut


def _check(validate: Callable[[], None]) -> None:
    try:
        validate()
    except InvalidRequest as exc:
        raise InvalidArgument(str(exc)) from exc
