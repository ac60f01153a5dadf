"""Streaming InstallSnapshot: chunked, CRC-checked, written to a temp file, never half-used."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from kvraft._pb.kvraft.v1 import raft_pb2, raft_pb2_grpc
from kvraft.core.types import ConfState, InstallSnapshot, SnapshotMeta
from kvraft.errors import SnapshotError
from kvraft.transport import snapshot, wire
from kvraft.transport.peer import TransportConfig

from .harness import CLUSTER, Node, free_port, run
from .test_peer import FAST, Reports, transport

META = SnapshotMeta(index=42, term=3, conf_state=ConfState(voters=frozenset({1, 2, 3})))
MSG = InstallSnapshot(1, 2, 3, META)
SMALL_CHUNKS = TransportConfig(
    backoff_min=FAST.backoff_min, backoff_max=FAST.backoff_max, snapshot_chunk_bytes=1000
)


def write_file(directory: Path, size: int) -> Path:
    path = directory / "snapshot.bin"
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("size", [0, 999, 1000, 3500])
def test_a_snapshot_file_arrives_intact_and_is_reported(tmp_path: Path, size: int) -> None:
    src_dir, recv_dir = dirs(tmp_path)
    src = write_file(src_dir, size)

    async def main() -> None:
        node = await Node(2, recv_dir).start()
        reports = Reports()
        t = transport({2: node.address}, reports, SMALL_CHUNKS)
        assert await t.send_snapshot(MSG, src) is True
        assert reports.snapshots == [(2, True)]
        [(msg, data, path)] = node.snapshots
        assert msg == MSG
        assert data == src.read_bytes()
        assert path.parent == recv_dir and path.name.endswith(snapshot.TEMP_SUFFIX)
        await t.close()
        await node.stop()

    run(main())


def test_a_snapshot_to_a_dead_peer_or_of_a_missing_file_fails_and_is_reported(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        reports = Reports()
        t = transport({2: f"127.0.0.1:{free_port()}"}, reports, SMALL_CHUNKS)
        assert await t.send_snapshot(MSG, write_file(tmp_path, 10)) is False
        assert await t.send_snapshot(MSG, tmp_path / "missing") is False
        assert await t.send_snapshot(InstallSnapshot(1, 9, 3, META), tmp_path / "x") is False
        assert reports.snapshots == [(2, False), (2, False), (9, False)]
        await t.close()

    run(main())


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(where the sender's file lives, where the receiver writes)."""
    src, recv = tmp_path / "src", tmp_path / "recv"
    src.mkdir()
    recv.mkdir()
    return src, recv


async def chunks_of(data: bytes, directory: Path, size: int = 1000) -> list[Any]:
    path = directory / "snapshot.bin"
    path.write_bytes(data)
    return [c async for c in snapshot.snapshot_chunks(MSG, path, size)]


async def feed(chunks: list[Any]) -> AsyncIterator[Any]:
    for c in chunks:
        yield c


def corrupt_data(cs: list[Any]) -> None:
    cs[1].data = bytes([cs[1].data[0] ^ 0xFF]) + cs[1].data[1:]  # always a real change


def corrupt_file_crc(cs: list[Any]) -> None:
    cs[-1].file_crc32 ^= 1


def drop_middle(cs: list[Any]) -> None:
    del cs[1]


def cut_short(cs: list[Any]) -> None:
    del cs[-1]


def overrun(cs: list[Any]) -> None:
    cs[0].total_size = 1500


def no_header(cs: list[Any]) -> None:
    cs[0].ClearField("header")


CORRUPTIONS: dict[str, tuple[Callable[[list[Any]], None], str]] = {
    "chunk crc": (corrupt_data, "failed its CRC-32 check"),
    "file crc": (corrupt_file_crc, "whole-file CRC-32"),
    "gap": (drop_middle, "expected 1000"),
    "early end": (cut_short, "ended early"),
    "overrun": (overrun, "past its announced 1500 bytes"),
    "no header": (no_header, "no InstallSnapshot header"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_damaged_stream_is_rejected_and_leaves_no_file(tmp_path: Path, name: str) -> None:
    damage, message = CORRUPTIONS[name]
    src, recv = dirs(tmp_path)

    async def main() -> None:
        cs = await chunks_of(os.urandom(3500), src)
        damage(cs)
        with pytest.raises(SnapshotError, match=message):
            await snapshot.receive_snapshot(feed(cs), recv)

    run(main())
    assert list(recv.iterdir()) == []


def test_the_announced_size_is_bounded(tmp_path: Path) -> None:
    src, recv = dirs(tmp_path)

    async def main() -> None:
        cs = await chunks_of(os.urandom(3500), src)
        with pytest.raises(SnapshotError, match="exceeds the limit of 3000 bytes"):
            await snapshot.receive_snapshot(feed(cs), recv, max_size=3000)

    run(main())
    assert list(recv.iterdir()) == []


def test_the_service_answers_a_corrupted_chunk_with_data_loss(tmp_path: Path) -> None:
    src, recv = dirs(tmp_path)

    async def main() -> None:
        node = await Node(2, recv).start()
        cs = await chunks_of(os.urandom(3500), src)
        corrupt_data(cs)
        async with grpc.aio.insecure_channel(node.address) as ch:
            call = raft_pb2_grpc.RaftStub(ch).InstallSnapshot(
                metadata=wire.call_metadata(CLUSTER, 1, 2)
            )
            for c in cs:
                try:
                    await call.write(c)
                except grpc.aio.AioRpcError:
                    break  # the receiver may end the call before all chunks are written
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
        assert err.value.code() == grpc.StatusCode.DATA_LOSS
        assert "failed its CRC-32 check" in (err.value.details() or "")
        assert node.snapshots == []
        assert node.service is not None and node.service.snapshot_failures == 1
        await node.stop()

    run(main())
    assert list(recv.iterdir()) == []


def test_chunks_carry_header_size_offsets_and_crcs(tmp_path: Path) -> None:
    async def main() -> None:
        data = os.urandom(2500)
        cs = await chunks_of(data, tmp_path)
        assert [(c.offset, len(c.data), c.last) for c in cs] == [
            (0, 1000, False),
            (1000, 1000, False),
            (2000, 500, True),
        ]
        assert cs[0].HasField("header") and cs[0].total_size == 2500
        assert not any(c.HasField("header") for c in cs[1:])
        assert isinstance(cs[0], raft_pb2.SnapshotChunk)

    run(main())


def test_fire_and_forget_transfers_complete_one_at_a_time_per_peer(tmp_path: Path) -> None:
    src_dir, recv_dir = dirs(tmp_path)
    src = write_file(src_dir, 5000)

    async def main() -> None:
        node = await Node(2, recv_dir).start()
        reports = Reports()
        t = transport({2: node.address}, reports, SMALL_CHUNKS)
        first = t.send_snapshot(MSG, src)
        assert t.send_snapshot(MSG, src) is first  # one transfer per peer at a time
        del first  # the runtime keeps no reference; the transport must
        await reports.signal.wait_for(lambda: reports.snapshots == [(2, True)], "snapshot ok")
        assert [(m, d) for m, d, _ in node.snapshots] == [(MSG, src.read_bytes())]
        await t.close()
        await node.stop()

    run(main())
