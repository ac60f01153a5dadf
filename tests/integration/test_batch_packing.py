"""Packing on the KV.Batch stream (kv.proto, kvraft/batching.py) against real nodes:
packed requests are each answered once; answers come packed only to a client that
announced it reads packing; the client library packs and unpacks correctly under load."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.batching import PACKING, announces_packing
from kvraft.client import Client

from .cluster import Cluster

pytestmark = pytest.mark.integration

N = 50


def _packed_puts(prefix: bytes) -> Any:
    """One stream message carrying N puts (ids 1..N) and a read of the first key."""
    msg = pb.BatchRequest(id=1, put=pb.PutRequest(key=prefix + b"00", value=b"v1"))
    for i in range(2, N + 1):
        msg.more.add(id=i, put=pb.PutRequest(key=prefix + b"%02d" % i, value=b"v%d" % i))
    msg.more.add(id=N + 1, range=pb.RangeRequest(key=prefix + b"00", consistency=pb.STALE))
    return msg


def _answers(call: Any) -> list[Any]:
    out = []
    for resp in call:
        out.append(resp)
        out.extend(resp.more)
    return out


def test_packed_requests_are_each_answered_and_answers_come_packed(
        shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    leader.connect()
    call = leader.kv.Batch(iter([_packed_puts(b"pack/a/")]), metadata=PACKING, timeout=20)
    messages = list(call)
    assert announces_packing(call.initial_metadata())
    answers = [a for m in messages for a in (m, *m.more)]
    assert sorted(a.id for a in answers) == list(range(1, N + 2))
    puts = [a for a in answers if a.id <= N]
    assert all(a.WhichOneof("response") == "put" for a in puts), puts[:3]
    assert len({a.put.header.revision for a in puts}) == N  # N distinct writes applied
    # the N puts commit together, so their answers leave together
    assert len(messages) < len(answers)
    assert all(not a.more for m in messages for a in m.more)


def test_answers_are_not_packed_for_a_client_that_did_not_ask(shared_cluster: Cluster) -> None:
    leader = shared_cluster.leader()
    leader.connect()
    messages = list(leader.kv.Batch(iter([_packed_puts(b"pack/b/")]), timeout=20))
    assert sorted(m.id for m in messages) == list(range(1, N + 2))
    assert all(not m.more for m in messages)


def test_client_library_packs_and_unpacks_under_concurrency(shared_cluster: Cluster) -> None:
    endpoints = [n.address for n in shared_cluster.nodes.values()]

    async def go() -> list[bytes | None]:
        async with Client(endpoints, timeout=30) as c:
            await asyncio.gather(*(c.put(b"pack/c/%03d" % i, b"v%d" % i) for i in range(300)))
            got = await asyncio.gather(*(c.get(b"pack/c/%03d" % i) for i in range(300)))
            return [kv.value if kv else None for kv in got]

    values = asyncio.run(go())
    assert values == [b"v%d" % i for i in range(300)]
