"""Cluster methods of the client: status, membership, leadership, snapshots.

Membership changes and leadership transfer go to the leader (with redirects and
retries like writes; a membership change refused because another is pending is retried
until the deadline). They carry no session: if one ends in OutcomeUnknown, check the
membership before trying again.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from kvraft._pb.kvraft.v1 import admin_pb2
from kvraft.client import errors
from kvraft.client.endpoints import Endpoint, normalize_address
from kvraft.client.failure import Failure, Kind, from_rpc_error
from kvraft.client.retry import Caller
from kvraft.client.types import Member, NodeStatus, SnapshotInfo
from kvraft.fsutil import fsync_dir

Progress = Callable[[int, int], None]  # (bytes received, total bytes; 0 if unknown)


class AdminMixin(Caller):
    async def _admin(self, what: str, method: str, req: Any, *, write: bool = False,
                     target: str = "leader", timeout: float | None = None,
                     conf_change: bool = False) -> Any:
        async def attempt(ep: Endpoint, t: float) -> Any:
            ep.connect()
            return await self._unary(ep, getattr(ep.admin, method), req, t)

        return await self._retry(what, attempt, target=target, write=write, timeout=timeout,
                                 conf_change=conf_change)

    async def status(self, endpoint: str | None = None, *,
                     timeout: float | None = None) -> NodeStatus:
        """One node's view of itself and the cluster: the given ``endpoint`` (one
        attempt, no redirect), else the leader's."""
        if endpoint is None:
            resp = await self._admin("status", "Status", admin_pb2.StatusRequest(),
                                     target="any", timeout=timeout)
            st = NodeStatus.from_pb(resp)
            if st.role == "leader" or not st.leader_addr:
                return st
            self._pool.set_leader(st.leader_addr)
            try:
                return await self.status(st.leader_addr, timeout=timeout)
            except errors.Unavailable:
                return st  # the leader it names does not answer us: its view will do
        ep = self._pool.get(normalize_address(endpoint))
        ep.connect()
        t = self._policy.timeout if timeout is None else timeout
        try:
            resp = await self._unary(ep, ep.admin.Status, admin_pb2.StatusRequest(), t)
        except Failure as f:
            raise errors.Unavailable(f"status of {ep.address}: {f.code}: {f.message}",
                                     code=f.code, endpoint=ep.address) from None
        return NodeStatus.from_pb(resp)

    async def cluster_status(self, *, timeout: float = 2.0
                             ) -> list[tuple[str, NodeStatus | errors.ClientError]]:
        """Every node's status, asked in parallel: the known endpoints plus every member
        any of them reports. One (address, status or error) pair per address, sorted by
        node id (unreachable ones last, by address)."""
        asked: dict[str, NodeStatus | errors.ClientError] = {}

        async def ask(address: str) -> None:
            try:
                asked[address] = await self.status(address, timeout=timeout)
            except errors.ClientError as e:
                asked[address] = e

        todo = list(self._pool.endpoints)
        while todo:
            await asyncio.gather(*(ask(a) for a in todo))
            members = {m.address for s in asked.values() if isinstance(s, NodeStatus)
                       for m in s.membership if m.address}
            todo = sorted(members - asked.keys())
        # the same node may be known by two addresses: keep its first answer
        seen: set[int] = set()
        rows: list[tuple[str, NodeStatus | errors.ClientError]] = []
        for address, st in asked.items():
            if isinstance(st, NodeStatus):
                if st.id in seen:
                    continue
                seen.add(st.id)
            rows.append((address, st))
        rows.sort(key=lambda r: (0, r[1].id, "") if isinstance(r[1], NodeStatus)
                  else (1, 0, r[0]))
        return rows

    async def members(self, *, timeout: float | None = None) -> list[Member]:
        """The membership as the leader has applied it, by id (asked of the leader: a
        follower may not have applied the latest change yet)."""
        resp = await self._admin("member list", "MemberList", admin_pb2.MemberListRequest(),
                                 timeout=timeout)
        return sorted((Member.from_pb(m) for m in resp.members), key=lambda m: m.id)

    async def _change(self, what: str, method: str, req: Any,
                      timeout: float | None) -> list[Member]:
        resp = await self._admin(what, method, req, write=True, timeout=timeout,
                                 conf_change=True)
        return sorted((Member.from_pb(m) for m in resp.members), key=lambda m: m.id)

    async def add_member(self, node_id: int, address: str, *, learner: bool = False,
                         timeout: float | None = None) -> list[Member]:
        """Add a voter (or a learner) and return the new membership. Start the new node
        with ``kvraft serve --join`` so it waits to be added instead of bootstrapping."""
        req = admin_pb2.MemberAddRequest(node_id=node_id, address=normalize_address(address),
                                         learner=learner)
        kind = "learner" if learner else "voter"
        return await self._change(f"add {kind} {node_id}", "MemberAdd", req, timeout)

    async def remove_member(self, node_id: int, *,
                            timeout: float | None = None) -> list[Member]:
        """Remove a voter or learner; returns the new membership."""
        req = admin_pb2.MemberRemoveRequest(node_id=node_id)
        return await self._change(f"remove member {node_id}", "MemberRemove", req, timeout)

    async def wait_applied(self, index: int, members: list[Member], *,
                           timeout: float = 10.0) -> list[int]:
        """Wait until every one of ``members`` reports (Admin Status) an applied index of
        at least ``index``; returns the ids of those that did not within ``timeout``
        seconds (unreachable ones included), [] when all did.

        Use after removing a member and before stopping it: a remaining member that has
        not applied the removal still counts the removed one as a voter, and if the leader
        failed then, it could not be elected without the removed node's vote."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = {m.id: m.address for m in members}

        async def applied(address: str) -> int:
            try:
                st = await self.status(address, timeout=max(0.1, deadline - loop.time()))
            except errors.ClientError:
                return -1
            return st.applied_index

        while waiting:
            ids = list(waiting)
            got = await asyncio.gather(*(applied(waiting[i]) for i in ids))
            for i, a in zip(ids, got, strict=True):
                if a >= index:
                    del waiting[i]
            if not waiting or loop.time() >= deadline:
                break
            await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
        return sorted(waiting)

    async def promote_member(self, node_id: int, *,
                             timeout: float | None = None) -> list[Member]:
        """Turn a learner into a voter; returns the new membership."""
        req = admin_pb2.MemberPromoteRequest(node_id=node_id)
        return await self._change(f"promote member {node_id}", "MemberPromote", req, timeout)

    async def transfer_leadership(self, to: int = 0, *, timeout: float | None = None) -> int:
        """Hand leadership to voter ``to`` (0: the most up-to-date other voter); returns
        the new leader's id."""
        req = admin_pb2.TransferLeaderRequest(to=to)
        resp = await self._admin("leader transfer", "TransferLeader", req, write=True,
                                 timeout=timeout)
        self._pool.set_leader(resp.header.leader_addr or None)
        return int(resp.leader_id)

    async def snapshot(self, endpoint: str | None = None, *,
                       timeout: float | None = None) -> SnapshotInfo:
        """Make a node (``endpoint``, default the leader) snapshot its state now and
        compact its log behind it."""
        req = admin_pb2.TakeSnapshotRequest()
        if endpoint is None:
            resp = await self._admin("snapshot", "TakeSnapshot", req, timeout=timeout)
        else:
            ep = self._pool.get(normalize_address(endpoint))
            ep.connect()
            t = self._policy.timeout if timeout is None else timeout
            try:
                resp = await self._unary(ep, ep.admin.TakeSnapshot, req, t)
            except Failure as f:
                raise errors.Unavailable(f"snapshot at {ep.address}: {f.code}: {f.message}",
                                         code=f.code, endpoint=ep.address) from None
        return SnapshotInfo(resp.index, resp.term, resp.size_bytes)

    async def save_snapshot(self, path: str | os.PathLike[str], *, endpoint: str | None = None,
                            progress: Progress | None = None,
                            timeout: float = 600.0) -> SnapshotInfo:
        """Download a node's latest snapshot file (``endpoint``, default the leader) to
        ``path``: written to a temporary file, every chunk and the whole file checked
        against their CRC-32, fsynced, then renamed into place. ``progress`` is called
        after each chunk. Raises SnapshotTransferError (partial file removed)."""
        if endpoint is None:
            endpoint = (await self.status(timeout=min(timeout, self._policy.timeout))).address
        ep = self._pool.get(normalize_address(endpoint))
        ep.connect()
        dest = Path(path)
        tmp = dest.with_name(dest.name + ".part")
        try:
            info = await self._download(ep, tmp, progress, timeout)
            os.replace(tmp, dest)
            fsync_dir(dest.parent)
            return info
        finally:
            tmp.unlink(missing_ok=True)

    async def _download(self, ep: Endpoint, tmp: Path, progress: Progress | None,
                        timeout: float) -> SnapshotInfo:
        def bad(why: str) -> errors.SnapshotTransferError:
            return errors.SnapshotTransferError(f"snapshot download from {ep.address}: {why}",
                                                endpoint=ep.address)

        index = term = total = received = 0
        crc = 0
        done = False
        try:
            with tmp.open("wb") as f:
                async for chunk in ep.admin.SaveSnapshot(admin_pb2.SaveSnapshotRequest(),
                                                         timeout=timeout):
                    if received == 0 and not index:
                        index, term, total = chunk.index, chunk.term, chunk.total_size
                    if chunk.offset != received:
                        raise bad(f"chunk at offset {chunk.offset}, expected {received}")
                    if zlib.crc32(chunk.data) != chunk.crc32:
                        raise bad(f"chunk at offset {chunk.offset} failed its checksum")
                    f.write(chunk.data)
                    crc = zlib.crc32(chunk.data, crc)
                    received += len(chunk.data)
                    if progress is not None:
                        progress(received, total)
                    if chunk.last:
                        if chunk.file_crc32 != crc:
                            raise bad("the whole file failed its checksum")
                        done = True
                        break
                f.flush()
                os.fsync(f.fileno())
        except grpc.aio.AioRpcError as e:
            f2 = from_rpc_error(e, ep.address)
            if f2.kind is Kind.UNREACHABLE:
                raise errors.Unavailable(f"snapshot download: {f2}", code=f2.code,
                                         endpoint=ep.address) from None
            raise bad(f"{f2.code}: {f2.message}") from None
        if not done:
            raise bad(f"the stream ended after {received} bytes without its last chunk")
        if total and received != total:
            raise bad(f"got {received} bytes, the node announced {total}")
        return SnapshotInfo(index, term, received)


