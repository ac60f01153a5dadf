"""gRPC glue of the Admin service: status, membership, leadership transfer, snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from kvraft import __version__
from kvraft._pb.kvraft.v1 import admin_pb2 as apb
from kvraft._pb.kvraft.v1 import admin_pb2_grpc
from kvraft.core.types import ConfChange, ConfChangeType, ConfState
from kvraft.runtime.driver import Driver
from kvraft.server.frontend import KvFrontend
from kvraft.server.status import InvalidArgument, describe

SNAPSHOT_CHUNK = 1 << 20


def _stats(d: Driver) -> dict[str, float]:
    """StatusResponse.stats: the driver's counters (DriverStats) and bookkeeping."""
    out: dict[str, float] = {k: float(v) for k, v in dataclasses.asdict(d.stats).items()}
    out.update(d.counters())
    return out


class AdminService(admin_pb2_grpc.AdminServicer):  # type: ignore[misc]
    def __init__(
        self,
        driver: Driver,
        frontend: KvFrontend,
        *,
        address: str,
        cluster_id: str,
        address_of: Callable[[int], str],
        health: Callable[[], tuple[bool, str]],
        db_size: Callable[[], int],
        revision: Callable[[], int],
        election_timeout_s: float,
    ) -> None:
        self._driver = driver
        self._fe = frontend
        self._address = address  # this node's address
        self._cluster_id = cluster_id
        self._address_of = address_of
        self._health = health  # () -> (healthy, why not)
        self._db_size = db_size
        self._revision = revision
        self._election_timeout_s = election_timeout_s

    async def _abort(self, context: Any, exc: Exception) -> None:
        f = describe(exc, self._address_of)
        await context.abort(f.code, f.message, trailing_metadata=f.trailing_metadata())

    def _members(self, cs: ConfState) -> list[Any]:
        return [
            apb.Member(id=n, address=self._address_of(n), learner=n in cs.learners)
            for n in sorted(cs.all_nodes())
        ]

    async def Status(self, request: Any, context: Any) -> Any:
        d = self._driver
        try:
            st = await d.status()
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)
        healthy, why = self._health()
        return apb.StatusResponse(
            id=d.node_id,
            address=self._address,
            role=apb.Role.Name(int(d.role)),
            term=d.term,
            leader_id=d.leader,
            leader_addr=self._address_of(d.leader) if d.leader else "",
            commit_index=d.commit,
            applied_index=d.applied,
            log_first=int(str(st["log_first"])),
            log_last=int(str(st["log_last"])),
            snapshot_index=int(str(st["snapshot_index"])),
            membership=self._members(d.conf_state),
            db_size_bytes=self._db_size(),
            healthy=healthy,
            version=__version__,
            revision=self._revision(),
            cluster_id=self._cluster_id,
            health_detail=why,
            stats=_stats(d),
        )

    async def MemberList(self, request: Any, context: Any) -> Any:
        resp = apb.MemberListResponse(members=self._members(self._driver.conf_state))
        self._fe.header(resp.header)
        return resp

    async def _change(self, cc: ConfChange, out: Any, context: Any) -> Any:
        try:
            cs = await self._driver.propose_conf_change(cc)
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)
        out.members.extend(self._members(cs))
        self._fe.header(out.header)
        return out

    async def MemberAdd(self, request: Any, context: Any) -> Any:
        if request.node_id <= 0 or not request.address:
            await self._abort(context, InvalidArgument(
                "member add: node_id must be > 0 and address must be host:port"))
        kind = ConfChangeType.ADD_LEARNER if request.learner else ConfChangeType.ADD_VOTER
        cc = ConfChange(kind, request.node_id, request.address.encode())
        return await self._change(cc, apb.MemberListResponse(), context)

    async def MemberRemove(self, request: Any, context: Any) -> Any:
        cc = ConfChange(ConfChangeType.REMOVE_NODE, request.node_id)
        return await self._change(cc, apb.MemberListResponse(), context)

    async def MemberPromote(self, request: Any, context: Any) -> Any:
        if request.node_id not in self._driver.conf_state.learners:
            await self._abort(context, InvalidArgument(
                f"member promote: node {request.node_id} is not a learner"))
        address = self._address_of(request.node_id).encode()
        cc = ConfChange(ConfChangeType.ADD_VOTER, request.node_id, address)
        return await self._change(cc, apb.MemberListResponse(), context)

    async def TransferLeader(self, request: Any, context: Any) -> Any:
        d = self._driver
        to = request.to or await self._best_target()
        me = d.node_id
        try:
            if to == 0:
                raise InvalidArgument("transfer leader: there is no other voter to hand over to")
            await d.transfer_leadership(to)
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)
        moved = await d.wait_for(
            lambda drv: drv.leader not in (0, me), timeout=2 * self._election_timeout_s
        )
        if not moved:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"leadership transfer to node {to} did not complete within "
                f"{2 * self._election_timeout_s:.1f}s (leader now: {d.leader or 'none'})",
            )
        resp = apb.TransferLeaderResponse(leader_id=d.leader)
        self._fe.header(resp.header)
        return resp

    async def _best_target(self) -> int:
        """The other voter with the highest match index (0 if none)."""
        d = self._driver
        voters = sorted(d.conf_state.voters - {d.node_id})
        if not voters:
            return 0
        progress: Any = (await d.status()).get("progress") or {}

        def match(n: int) -> int:
            p = progress.get(n, {}) if isinstance(progress, dict) else {}
            return int(p.get("match", 0)) if isinstance(p, dict) else 0

        return max(voters, key=match)

    async def TakeSnapshot(self, request: Any, context: Any) -> Any:
        try:
            snap = await self._driver.take_snapshot()
        except Exception as exc:  # noqa: BLE001
            await self._abort(context, exc)
        resp = apb.TakeSnapshotResponse(index=snap.meta.index, term=snap.meta.term,
                                        size_bytes=snap.size)
        self._fe.header(resp.header)
        return resp

    async def SaveSnapshot(self, request: Any, context: Any) -> AsyncIterator[Any]:
        snap = self._driver.latest_snapshot
        if snap is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "this node has no snapshot yet: take one (kvraft snapshot) first")
            return
        try:
            f = open(snap.path, "rb")  # kept open: pruning unlinks, we keep reading
        except OSError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"snapshot {snap.path} was pruned meanwhile: retry ({exc})")
            return
        with f:
            total = snap.size
            offset = 0
            file_crc = 0
            while True:
                data = await asyncio.to_thread(f.read, SNAPSHOT_CHUNK)
                file_crc = zlib.crc32(data, file_crc)
                last = offset + len(data) >= total
                yield apb.SaveSnapshotResponse(
                    index=snap.meta.index if offset == 0 else 0,
                    term=snap.meta.term if offset == 0 else 0,
                    total_size=total if offset == 0 else 0,
                    offset=offset,
                    data=data,
                    crc32=zlib.crc32(data),
                    last=last,
                    file_crc32=file_crc if last else 0,
                )
                offset += len(data)
                if last or not data:
                    break

