"""A fake kvraft cluster for client unit tests: tiny grpc.aio servers on loopback.

Every FakeNode serves the real KV and Admin services (unary and the Batch stream) over
one shared in-memory store, so the cluster is trivially consistent. What a test
controls is how each node *answers*: who is leader, whether followers name it, whether
the leader is silent, loses the outcome of a write, or refuses reads as too stale.
Counters record what each node was asked, so tests can assert on the client's routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2, admin_pb2_grpc, kv_pb2, kv_pb2_grpc


class FakeError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, *, leader_id: int = 0,
                 leader_addr: str = "", outcome_unknown: bool = False,
                 kvraft_metadata: bool = True) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.leader_id, self.leader_addr = leader_id, leader_addr
        self.outcome_unknown = outcome_unknown
        self.kvraft_metadata = kvraft_metadata

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if not self.kvraft_metadata:
            return ()
        md = [("x-kvraft-leader-id", str(self.leader_id))]
        if self.leader_addr:
            md.append(("x-kvraft-leader-addr", self.leader_addr))
        if self.outcome_unknown:
            md.append(("x-kvraft-outcome", "unknown"))
        return tuple(md)


@dataclass
class Store:
    """The one state every fake node serves."""

    data: dict[bytes, kv_pb2.KeyValue] = field(default_factory=dict)
    revision: int = 0
    applied: int = 0  # commands applied (a duplicate is not applied again)
    sessions: dict[int, tuple[int, Any]] = field(default_factory=dict)  # id -> (seq, resp)
    seqs: dict[int, list[int]] = field(default_factory=dict)  # every seq seen per client

    def put(self, key: bytes, value: bytes, prev: bool) -> Any:
        old = self.data.get(key)
        self.revision += 1
        kv = kv_pb2.KeyValue(key=key, value=value, mod_revision=self.revision,
                             create_revision=old.create_revision if old else self.revision,
                             version=old.version + 1 if old else 1)
        self.data[key] = kv
        r = kv_pb2.PutResponse()
        if prev and old is not None:
            r.prev_kv.CopyFrom(old)
        return r

    def keys(self, key: bytes, end: bytes) -> list[bytes]:
        if not end:
            return [key] if key in self.data else []
        return sorted(k for k in self.data if k >= key and (end == b"\0" or k < end))

    def range(self, req: Any) -> Any:
        keys = self.keys(req.key, req.range_end)
        r = kv_pb2.RangeResponse(count=len(keys))
        shown = keys[: req.limit] if req.limit else keys
        r.more = len(shown) < len(keys)
        for k in shown:
            kv = r.kvs.add()
            kv.CopyFrom(self.data[k])
            if req.keys_only:
                kv.value = b""
        return r

    def delete(self, req: Any) -> Any:
        keys = self.keys(req.key, req.range_end)
        r = kv_pb2.DeleteRangeResponse(deleted=len(keys))
        if keys:
            self.revision += 1
        for k in keys:
            old = self.data.pop(k)
            if req.prev_kv:
                r.prev_kvs.add().CopyFrom(old)
        return r

    def compare(self, c: Any) -> bool:
        kv = self.data.get(c.key)
        target = c.WhichOneof("target_union")
        have: Any = {
            "value": kv.value if kv else b"", "version": kv.version if kv else 0,
            "create_revision": kv.create_revision if kv else 0,
            "mod_revision": kv.mod_revision if kv else 0,
        }[target]
        want = getattr(c, target)
        return [have == want, have != want, have > want, have < want][c.result]

    def txn(self, req: Any) -> Any:
        ok = all(self.compare(c) for c in req.compare)
        r = kv_pb2.TxnResponse(succeeded=ok)
        for op in req.success if ok else req.failure:
            kind = op.WhichOneof("request")
            out = r.responses.add()
            if kind == "range":
                out.range.CopyFrom(self.range(op.range))
            elif kind == "put":
                out.put.CopyFrom(self.put(op.put.key, op.put.value, op.put.prev_kv))
            else:
                out.delete_range.CopyFrom(self.delete(op.delete_range))
        return r

    def apply(self, kind: str, req: Any) -> Any:
        s = req.session
        if s.client_id:
            self.seqs.setdefault(s.client_id, []).append(s.seq)
            last = self.sessions.get(s.client_id)
            if last is not None and last[0] == s.seq:
                return last[1]  # a retry: answer again, apply nothing
        self.applied += 1
        if kind == "put":
            resp = self.put(req.key, req.value, req.prev_kv)
        elif kind == "delete_range":
            resp = self.delete(req)
        else:
            resp = self.txn(req)
        if s.client_id:
            self.sessions[s.client_id] = (s.seq, resp)
        return resp


@dataclass
class Behaviour:
    """How one node answers right now (tests flip these between calls)."""

    hint: bool = True  # a follower names the leader
    silent: bool = False  # the node never answers KV requests (partitioned)
    lose_outcome: int = 0  # next N writes: apply, then answer "outcome unknown"
    refuse_outcome: int = 0  # next N writes: don't apply, answer "outcome unknown"
    too_stale: bool = False  # refuse STALE reads that carry max_staleness
    overloaded: int = 0  # next N requests answer RESOURCE_EXHAUSTED
    batch: bool = True  # serve the Batch stream (else UNIMPLEMENTED)
    conf_busy: int = 0  # next N membership changes answer "change pending"
    damaged: bool = False  # every KV request answers DATA_LOSS


class FakeCluster:
    """N fake nodes on loopback. ``leader`` is the id of the acting leader (0: none)."""

    def __init__(self, size: int = 3) -> None:
        self.store = Store()
        self.leader = 1
        self.term = 1
        self.nodes = [FakeNode(self, i + 1) for i in range(size)]
        self.members = [admin_pb2.Member(id=n.id, address="") for n in self.nodes]

    @property
    def endpoints(self) -> list[str]:
        return [n.address for n in self.nodes]

    def node(self, node_id: int) -> FakeNode:
        return self.nodes[node_id - 1]

    def address_of(self, node_id: int) -> str:
        return self.node(node_id).address if node_id else ""

    async def start(self) -> FakeCluster:
        for n in self.nodes:
            await n.start()
        for m in self.members:
            m.address = self.address_of(m.id)
        return self

    async def stop(self) -> None:
        for n in self.nodes:
            await n.stop()

    async def __aenter__(self) -> FakeCluster:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class FakeNode(kv_pb2_grpc.KVServicer, admin_pb2_grpc.AdminServicer):
    def __init__(self, cluster: FakeCluster, node_id: int) -> None:
        self.cluster = cluster
        self.id = node_id
        self.address = ""
        self.port = 0
        self.server: grpc.aio.Server | None = None
        self.behaviour = Behaviour()
        self.calls: Counter[str] = Counter()  # "put", "range", "batch-open", "Status"...
        self.snapshot_file = b"snapshot-bytes" * 1000
        self.corrupt_snapshot = False

    async def start(self) -> None:
        self.server = grpc.aio.server()
        kv_pb2_grpc.add_KVServicer_to_server(self, self.server)
        admin_pb2_grpc.add_AdminServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.address = f"127.0.0.1:{self.port}"
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=None)
            self.server = None

    # ------------------------------------------------------------------ behaviour
    def header(self) -> Any:
        c = self.cluster
        return kv_pb2.ResponseHeader(revision=c.store.revision, node_id=self.id, term=c.term,
                                     leader_id=c.leader, leader_addr=c.address_of(c.leader))

    def not_leader(self) -> FakeError:
        c = self.cluster
        if not c.leader:
            return FakeError(grpc.StatusCode.UNAVAILABLE, "no leader: election in progress")
        if not self.behaviour.hint:
            return FakeError(grpc.StatusCode.FAILED_PRECONDITION, "not leader")
        return FakeError(grpc.StatusCode.FAILED_PRECONDITION,
                         f"not leader; the leader is node {c.leader}",
                         leader_id=c.leader, leader_addr=c.address_of(c.leader))

    async def handle(self, kind: str, req: Any) -> Any:
        """Answer one KV request (kind: range, put, delete_range, txn) or raise FakeError."""
        self.calls[kind] += 1
        b = self.behaviour
        if b.silent:
            await asyncio.Event().wait()
        if b.damaged:
            raise FakeError(grpc.StatusCode.DATA_LOSS, "damaged storage on this node: "
                            "record 7 failed its checksum; use another node")
        if b.overloaded:
            b.overloaded -= 1
            raise FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many proposals in flight")
        if kind == "put" and not req.key:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "key is empty; keys need 1 byte")
        store = self.cluster.store
        if kind == "range":
            if req.consistency == kv_pb2.STALE:
                if b.too_stale and req.max_staleness_ms:
                    raise FakeError(grpc.StatusCode.UNAVAILABLE,
                                    "too stale: last heard from the leader 9s ago")
            elif self.cluster.leader != self.id:
                raise self.not_leader()
            r = store.range(req)
            r.header.CopyFrom(self.header())
            return r
        if self.cluster.leader != self.id:
            raise self.not_leader()
        if b.refuse_outcome:
            b.refuse_outcome -= 1
            raise FakeError(grpc.StatusCode.UNAVAILABLE, "leadership lost; outcome unknown",
                            outcome_unknown=True)
        resp = store.apply(kind, req)
        if b.lose_outcome:
            b.lose_outcome -= 1
            raise FakeError(grpc.StatusCode.UNAVAILABLE, "leadership lost; outcome unknown",
                            outcome_unknown=True)
        resp.header.CopyFrom(self.header())
        return resp

    async def _unary(self, kind: str, req: Any, context: Any) -> Any:
        try:
            return await self.handle(kind, req)
        except FakeError as e:
            context.set_trailing_metadata(e.metadata())
            await context.abort(e.code, e.message)

    # ------------------------------------------------------------------ KV service
    async def Range(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("range", request, context)

    async def Put(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("put", request, context)

    async def DeleteRange(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("delete_range", request, context)

    async def Txn(self, request: Any, context: Any) -> Any:  # noqa: N802
        return await self._unary("txn", request, context)

    async def Batch(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        if not self.behaviour.batch:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Batch is not implemented")
        self.calls["batch-open"] += 1
        out: asyncio.Queue[Any] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def one(req: Any) -> None:
            kind = req.WhichOneof("request")
            resp = kv_pb2.BatchResponse(id=req.id)
            try:
                getattr(resp, kind).CopyFrom(await self.handle(kind, getattr(req, kind)))
            except FakeError as e:
                resp.error.CopyFrom(kv_pb2.BatchError(
                    code=e.code.value[0], message=e.message, leader_id=e.leader_id,
                    leader_addr=e.leader_addr, outcome_unknown=e.outcome_unknown))
            await out.put(resp)

        async def pump() -> None:
            async for req in request_iterator:
                t = asyncio.get_running_loop().create_task(one(req))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.gather(*list(tasks))
            await out.put(None)

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            while (item := await out.get()) is not None:
                yield item
        finally:
            reader.cancel()
            for t in list(tasks):
                t.cancel()

    # ------------------------------------------------------------------ Admin service
    async def Status(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.calls["Status"] += 1
        c = self.cluster
        return admin_pb2.StatusResponse(
            id=self.id, address=self.address, role=3 if c.leader == self.id else 0,
            term=c.term, leader_id=c.leader, leader_addr=c.address_of(c.leader),
            commit_index=c.store.applied + 1, applied_index=c.store.applied + 1,
            log_first=1, log_last=c.store.applied + 1, membership=c.members,
            healthy=bool(c.leader), revision=c.store.revision, version="fake")

    async def _leader_only(self, context: Any) -> None:
        if self.cluster.leader != self.id:
            e = self.not_leader()
            context.set_trailing_metadata(e.metadata())
            await context.abort(e.code, e.message)

    async def MemberList(self, request: Any, context: Any) -> Any:  # noqa: N802
        return admin_pb2.MemberListResponse(header=self.header(), members=self.cluster.members)

    async def _change(self, context: Any, apply: Callable[[], None]) -> Any:
        self.calls["conf-change"] += 1
        await self._leader_only(context)
        if self.behaviour.conf_busy:
            self.behaviour.conf_busy -= 1
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "conf change at index 9 not applied yet")
        apply()
        return dict(header=self.header(), members=self.cluster.members)

    async def MemberAdd(self, request: Any, context: Any) -> Any:  # noqa: N802
        if any(m.id == request.node_id for m in self.cluster.members):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"node {request.node_id} is already a member")
        new = admin_pb2.Member(id=request.node_id, address=request.address,
                               learner=request.learner)
        return admin_pb2.MemberListResponse(
            **await self._change(context, lambda: self.cluster.members.append(new)))

    async def MemberRemove(self, request: Any, context: Any) -> Any:  # noqa: N802
        def apply() -> None:
            self.cluster.members[:] = [m for m in self.cluster.members
                                       if m.id != request.node_id]
        return admin_pb2.MemberListResponse(**await self._change(context, apply))

    async def MemberPromote(self, request: Any, context: Any) -> Any:  # noqa: N802
        def apply() -> None:
            for m in self.cluster.members:
                if m.id == request.node_id:
                    m.learner = False
        return admin_pb2.MemberListResponse(**await self._change(context, apply))

    async def TransferLeader(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self._leader_only(context)
        c = self.cluster
        c.leader = request.to or next(n.id for n in c.nodes if n.id != self.id)
        c.term += 1
        return admin_pb2.TransferLeaderResponse(header=self.header(), leader_id=c.leader)

    async def TakeSnapshot(self, request: Any, context: Any) -> Any:  # noqa: N802
        return admin_pb2.TakeSnapshotResponse(header=self.header(), index=7, term=2,
                                              size_bytes=len(self.snapshot_file))

    async def SaveSnapshot(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        data, step = self.snapshot_file, 4096
        for off in range(0, len(data), step):
            piece = data[off:off + step]
            crc = zlib.crc32(piece) ^ (1 if self.corrupt_snapshot else 0)
            last = off + step >= len(data)
            yield admin_pb2.SaveSnapshotResponse(
                index=7, term=2, total_size=len(data), offset=off, data=piece, crc32=crc,
                last=last, file_crc32=zlib.crc32(data) if last else 0)


@contextlib.contextmanager
def fake_cluster_in_thread(size: int = 3) -> Iterator[FakeCluster]:
    """A FakeCluster served by an event loop in another thread, for blocking callers
    (SyncClient, the CLI's main()). Tests may flip behaviours between calls."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeCluster(size)
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result()
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
