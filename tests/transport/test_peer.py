"""PeerTransport + RaftService over real grpc.aio servers on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from kvraft._pb.kvraft.v1 import raft_pb2, raft_pb2_grpc
from kvraft.core.types import (
    AppendEntries,
    Entry,
    EntryType,
    Heartbeat,
    Message,
    TimeoutNow,
    VoteResponse,
)
from kvraft.transport import codec, wire
from kvraft.transport.peer import PeerTransport, TransportConfig

from .harness import CLUSTER, Node, Signal, free_port, run

FAST = TransportConfig(backoff_min=0.01, backoff_max=0.1, handshake_timeout=2.0)


def beats(n: int, start: int = 0, src: int = 1, dst: int = 2) -> list[Message]:
    """``n`` distinguishable messages: Heartbeat.commit numbers them."""
    return [Heartbeat(src, dst, 1, commit=i) for i in range(start, start + n)]


class Reports:
    """Records the transport's callbacks."""

    def __init__(self) -> None:
        self.unreachable: list[int] = []
        self.snapshots: list[tuple[int, bool]] = []
        self.signal = Signal()

    def on_unreachable(self, peer: int) -> None:
        self.unreachable.append(peer)
        self.signal.poke()

    def on_snapshot_status(self, peer: int, ok: bool) -> None:
        self.snapshots.append((peer, ok))
        self.signal.poke()


def transport(
    peers: dict[int, str], reports: Reports, config: TransportConfig = FAST, **kw: str
) -> PeerTransport:
    return PeerTransport(
        1,
        peers,
        cluster_id=kw.get("cluster_id", CLUSTER),
        on_unreachable=reports.on_unreachable,
        on_snapshot_status=reports.on_snapshot_status,
        config=config,
    )


def test_messages_arrive_in_order_in_batched_frames(tmp_path: Path) -> None:
    async def main() -> None:
        node = await Node(2, tmp_path).start()
        t = transport({2: node.address}, Reports())
        entries = (Entry(1, 1, EntryType.NORMAL, b"x" * 100), Entry(1, 2, EntryType.CONF_CHANGE))
        sent = [*beats(2000), AppendEntries(1, 2, 1, 0, 0, entries, 2), TimeoutNow(1, 2, 1)]
        t.send(sent)  # one burst, queued before the writer runs: frames of 512 at most
        await node.wait_messages(len(sent))
        assert node.messages == sent
        assert [len(f) for f in node.frames] == [512, 512, 512, 466]
        stats = t.stats()[2]
        assert (stats.sent, stats.frames, stats.dropped, stats.connects) == (2002, 4, 0, 1)
        assert stats.bytes_sent == sum(codec.message_size(m) for m in sent)
        assert node.service is not None and node.service.received_from == {1: 2002}
        await t.close()
        await node.stop()

    run(main())


def test_frames_are_bounded_by_bytes(tmp_path: Path) -> None:
    async def main() -> None:
        node = await Node(2, tmp_path).start()
        cfg = TransportConfig(max_batch_bytes=10_000)
        t = transport({2: node.address}, Reports(), cfg)
        big = [
            AppendEntries(1, 2, 1, i, 1, (Entry(1, i + 1, data=b"v" * 3000),), 0) for i in range(7)
        ]
        t.send(big)
        await node.wait_messages(7)
        assert node.messages == big
        assert [len(f) for f in node.frames] == [3, 3, 1]
        await t.close()
        await node.stop()

    run(main())


def test_reconnects_after_the_peer_restarts_and_delivers_what_was_queued(tmp_path: Path) -> None:
    async def main() -> None:
        reports = Reports()
        node = await Node(2, tmp_path).start()
        t = transport({2: node.address}, reports)
        t.send(beats(10))
        await node.wait_messages(10)
        await node.stop()
        await reports.signal.wait_for(lambda: 2 in reports.unreachable, "unreachable report")
        t.send(beats(10, start=10))  # queued while the peer is down
        restarted = await Node(2, tmp_path, port=node.port).start()
        t.send(beats(10, start=20))
        await restarted.wait_messages(20)
        assert restarted.messages == beats(20, start=10)
        assert t.stats()[2].connects >= 2
        await t.close()
        await restarted.stop()

    run(main())


def test_overload_drops_the_oldest_messages_and_counts_them(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()  # nobody listens yet: everything stays queued
        t = transport({2: f"127.0.0.1:{port}"}, Reports(), TransportConfig(max_queue_msgs=100))
        t.send(beats(250))
        assert t.queued(2) == 100
        assert t.stats()[2].dropped == 150
        node = await Node(2, tmp_path, port=port).start()
        await node.wait_messages(100)
        assert node.messages == beats(100, start=150)  # the newest survive, in order
        await t.close()
        await node.stop()

    run(main())


def test_queue_bytes_are_bounded_too(tmp_path: Path) -> None:
    async def main() -> None:
        t = transport(
            {2: f"127.0.0.1:{free_port()}"}, Reports(), TransportConfig(max_queue_bytes=20_000)
        )
        t.send(
            [
                AppendEntries(1, 2, 1, i, 1, (Entry(1, i + 1, data=b"v" * 4000),), 0)
                for i in range(10)
            ]
        )
        assert t.queued(2) == 4
        assert t.stats()[2].dropped == 6
        await t.close()

    run(main())


def test_a_peer_of_another_cluster_or_another_id_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        node = await Node(2, tmp_path).start()
        reports = Reports()
        foreign = transport({2: node.address}, reports, cluster_id="other-cluster")
        # Node 2 listens where this transport believes node 3 lives.
        misdirected = transport({3: node.address}, reports)
        foreign.send(beats(5))
        misdirected.send(beats(5, dst=3))
        await reports.signal.wait_for(
            lambda: reports.unreachable.count(2) >= 2 and reports.unreachable.count(3) >= 2,
            "both refused streams reported, twice",
        )
        assert node.messages == []
        assert foreign.stats()[2].connects == 0 and misdirected.stats()[3].connects == 0
        await foreign.close()
        await misdirected.close()
        await node.stop()

    run(main())


def test_bad_messages_are_dropped_and_the_rest_delivered(tmp_path: Path) -> None:
    async def main() -> None:
        node = await Node(2, tmp_path).start()
        good = [Heartbeat(1, 2, 1, 5), VoteResponse(1, 2, 1, True)]
        batch = raft_pb2.MessageBatch()
        batch.messages.append(codec.encode_message(good[0]))
        batch.messages.add()  # no kind set
        batch.messages.append(codec.encode_message(Heartbeat(7, 2, 1, 5)))  # src != stream's
        batch.messages.append(codec.encode_message(Heartbeat(1, 9, 1, 5)))  # dst != node
        ae = batch.messages.add()
        codec.encode_into(AppendEntries(1, 2, 1, 0, 0, (Entry(1, 1),), 0), ae)
        ae.append_entries.entries[0].type = 9  # unknown entry type
        batch.messages.append(codec.encode_message(good[1]))
        async with grpc.aio.insecure_channel(node.address) as ch:
            call = raft_pb2_grpc.RaftStub(ch).Send(metadata=wire.call_metadata(CLUSTER, 1, 2))
            await call.write(batch)
            await call.done_writing()
            ack = await call
        assert ack.received == 2
        assert node.messages == good
        assert node.service is not None and node.service.dropped == 4
        await node.stop()

    run(main())


def test_update_peers_follows_membership_changes(tmp_path: Path) -> None:
    async def main() -> None:
        a = await Node(2, tmp_path).start()
        b = await Node(2, tmp_path).start()  # node 2 moved to another address
        c = await Node(3, tmp_path).start()
        t = transport({2: a.address, 1: "ignored: this is node 1 itself"}, Reports())
        assert t.peers == {2: a.address}
        t.send(beats(3))
        await a.wait_messages(3)
        t.update_peers({2: b.address, 3: c.address})
        t.send([*beats(3, start=3), *beats(2, dst=3)])
        await b.wait_messages(3)
        await c.wait_messages(2)
        assert b.messages == beats(3, start=3) and c.messages == beats(2, dst=3)
        t.update_peers({3: c.address})
        t.send(beats(1))
        assert t.unknown_dropped == 1 and t.peers == {3: c.address}
        await t.close()
        for n in (a, b, c):
            await n.stop()

    run(main())


class Frozen(raft_pb2_grpc.RaftServicer):  # type: ignore[misc]
    """Accepts Send streams, then never reads from them (a peer stuck in a long pause)."""

    async def Send(self, request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        await context.send_initial_metadata(((wire.FROM_KEY, "2"),))
        await asyncio.Event().wait()


def test_a_peer_that_stops_reading_is_reported_unreachable(tmp_path: Path) -> None:
    async def main() -> None:
        server = grpc.aio.server(options=list(wire.SERVER_OPTIONS))
        raft_pb2_grpc.add_RaftServicer_to_server(Frozen(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        reports = Reports()
        cfg = TransportConfig(write_timeout=0.5, backoff_min=0.01, backoff_max=0.1)
        t = transport({2: f"127.0.0.1:{port}"}, reports, cfg)
        payload = b"p" * 256_000
        for i in range(40):  # ~10 MB: far beyond what HTTP/2 flow control lets through
            t.send([AppendEntries(1, 2, 1, i, 1, (Entry(1, i + 1, data=payload),), 0)])
        await reports.signal.wait_for(lambda: 2 in reports.unreachable, "unreachable report")
        stats = t.stats()[2]
        assert stats.connects >= 1 and stats.failures >= 1 and stats.dropped >= 1
        await t.close()
        await server.stop(grace=None)

    run(main())


def test_an_idle_stream_survives_keepalive_pings(tmp_path: Path) -> None:
    """The receiver's SERVER_OPTIONS accept pings on a stream it never answers with data
    (without them gRPC servers send GOAWAY "too_many_pings" after a few pings)."""

    async def main() -> None:
        node = await Node(2, tmp_path).start()
        reports = Reports()
        cfg = TransportConfig(keepalive_ms=100)
        t = transport({2: node.address}, reports, cfg)
        t.send(beats(1))
        await node.wait_messages(1)
        # The scenario itself is silence: a default server would send GOAWAY after ~4-5 s.
        await asyncio.sleep(6.0)
        t.send(beats(1, start=1))
        await node.wait_messages(2)
        assert reports.unreachable == [] and t.stats()[2].connects == 1
        await t.close()
        await node.stop()

    run(main())
