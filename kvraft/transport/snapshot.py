"""Streaming a snapshot file between nodes in CRC-checked chunks (raft.proto SnapshotChunk).

Sender: :func:`snapshot_chunks` reads the file in slices off the event loop and yields
chunks: the first carries the InstallSnapshot header and the file size, every chunk its
offset, data and CRC-32, the last one ``last = true`` and the whole file's CRC-32.

Receiver: :func:`receive_snapshot` writes the chunks to a fresh temporary file in a given
directory, checks order, sizes and every CRC, fsyncs the file, and returns the header with
the file's path. On any failure (bad CRC, gap, oversize, stream ended early, cancelled)
it deletes the partial file and raises :class:`~kvraft.errors.SnapshotError`; the file is
never handed over unverified. The caller owns the returned file (renames or deletes it).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import zlib
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from kvraft._pb.kvraft.v1 import raft_pb2
from kvraft.core.types import InstallSnapshot
from kvraft.errors import SnapshotError
from kvraft.transport import codec

DEFAULT_CHUNK_SIZE = 1 << 20
"""Bytes of file data per chunk (well below the gRPC message limit)."""

TEMP_SUFFIX = ".recv"
"""Suffix of the receiver's temporary files (a restart may delete leftovers)."""


def _read_slice(f: BinaryIO, n: int) -> tuple[bytes, int]:
    data = f.read(n)
    return data, zlib.crc32(data)


async def snapshot_chunks(
    msg: InstallSnapshot, path: Path, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> AsyncIterator[Any]:
    """Yield the ``raft_pb2.SnapshotChunk`` frames that carry ``msg`` and file ``path``.

    Raises SnapshotError if the file cannot be read or shrinks while being read.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    try:
        f = open(path, "rb")  # closed in the finally below
    except OSError as exc:
        raise SnapshotError(f"cannot open snapshot file {path}: {exc}") from exc
    try:
        total = os.fstat(f.fileno()).st_size
        offset = 0
        file_crc = 0
        while True:
            want = min(chunk_size, total - offset)
            data, crc = await asyncio.to_thread(_read_slice, f, want)
            if len(data) != want:
                raise SnapshotError(
                    f"snapshot file {path} shrank while being sent: {offset + len(data)} "
                    f"of {total} bytes"
                )
            file_crc = zlib.crc32(data, file_crc)
            chunk = raft_pb2.SnapshotChunk(offset=offset, data=data, crc32=crc)
            if offset == 0:
                codec.encode_install_snapshot(msg, chunk.header)
                chunk.total_size = total
            offset += len(data)
            if offset >= total:
                chunk.last = True
                chunk.file_crc32 = file_crc
                yield chunk
                return
            yield chunk
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot file {path}: {exc}") from exc
    finally:
        f.close()


def _write_all(f: BinaryIO, data: bytes) -> None:
    f.write(data)


def _sync_and_close(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def receive_snapshot(
    chunks: AsyncIterable[Any], directory: Path, *, max_size: int | None = None
) -> tuple[InstallSnapshot, Path]:
    """Receive one snapshot stream into a new file in ``directory``.

    Returns the header message and the path of the complete, verified, fsynced file
    (named ``*.recv``; the caller owns it). ``max_size`` bounds the announced size.
    Raises SnapshotError (partial file deleted) when the stream is malformed, a CRC does
    not match, or it ends before the last chunk.
    """
    it = aiter(chunks)
    first = await anext(it, None)
    if first is None:
        raise SnapshotError("snapshot stream ended before its first chunk")
    if not first.HasField("header"):
        raise SnapshotError("first snapshot chunk carries no InstallSnapshot header")
    msg = codec.decode_install_snapshot(first.header)
    total = first.total_size
    if max_size is not None and total > max_size:
        raise SnapshotError(f"snapshot of {total} bytes exceeds the limit of {max_size} bytes")
    fd, name = tempfile.mkstemp(
        prefix=f"snap-{msg.meta.term}-{msg.meta.index}-from-{msg.src}-",
        suffix=TEMP_SUFFIX,
        dir=directory,
    )
    path = Path(name)
    f = os.fdopen(fd, "wb")
    try:
        received = 0
        file_crc = 0
        chunk = first
        while True:
            data = chunk.data
            if chunk.offset != received:
                raise SnapshotError(f"chunk at offset {chunk.offset}, expected {received}")
            if zlib.crc32(data) != chunk.crc32:
                raise SnapshotError(
                    f"chunk at offset {chunk.offset} ({len(data)} bytes) failed its CRC-32 check"
                )
            if received + len(data) > total:
                raise SnapshotError(f"snapshot data runs past its announced {total} bytes")
            await asyncio.to_thread(_write_all, f, data)
            received += len(data)
            file_crc = zlib.crc32(data, file_crc)
            if chunk.last:
                break
            nxt = await anext(it, None)
            if nxt is None:
                raise SnapshotError(f"snapshot stream ended early: {received} of {total} bytes")
            chunk = nxt
        if received != total:
            raise SnapshotError(f"snapshot ended at {received} of {total} bytes")
        if file_crc != chunk.file_crc32:
            raise SnapshotError("snapshot file failed its whole-file CRC-32 check")
        await asyncio.to_thread(_sync_and_close, f)
        return msg, path
    except BaseException:
        f.close()
        path.unlink(missing_ok=True)
        raise
