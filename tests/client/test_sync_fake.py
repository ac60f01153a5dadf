"""SyncClient: the blocking wrapper, against fake nodes served from another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kvraft import SyncClient
from kvraft.client import Cmp, InvalidArgument, Op
from tests.client.fakes import FakeCluster, fake_cluster_in_thread


@pytest.fixture
def cluster() -> Iterator[FakeCluster]:
    with fake_cluster_in_thread() as fake:
        yield fake


def test_sync_client_round_trip(cluster: FakeCluster) -> None:
    cluster.leader = 2
    with SyncClient(",".join(cluster.endpoints), timeout=2.0) as c:
        c.put("a", "1")
        c.put("b", "2")
        kv = c.get("a")
        assert kv is not None and kv.value == b"1"
        assert [kv.key for kv in c.scan(page_size=1)] == [b"a", b"b"]
        r = c.txn().if_(Cmp.value("a") == "1").then(Op.put("a", "3")).commit()
        assert r.succeeded
        assert c.get("a", consistency="stale").value == b"3"  # type: ignore[union-attr]
        assert c.delete_range("a", "c").deleted == 2
        assert c.status().id == 2
        assert c.leader == cluster.node(2).address
        with pytest.raises(InvalidArgument):
            c.put("", "x")
    assert cluster.store.applied == 4


def test_sync_client_from_many_threads(cluster: FakeCluster) -> None:
    with SyncClient(cluster.endpoints) as c:
        def work(t: int) -> None:
            for i in range(20):
                c.put(f"t{t}/{i}", "v")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(list(c.scan(prefix="t"))) == 160
    c.close()  # idempotent
