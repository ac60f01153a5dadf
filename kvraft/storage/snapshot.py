"""Snapshot files of the KV state: write from one consistent view, verify, restore.

File format (version 1; integers big-endian)::

    header   MAGIC "KVRSNAP\\n" | u16 version | u32 n | n bytes of JSON | u32 crc32(all before)
    chunk*   b"C" | u32 payload length | u32 record count | payload | u32 crc32(payload)
    trailer  b"E" | u64 keys | u64 sessions | u64 payload bytes | u32 crc32(whole file so far)

The header JSON holds index, term, conf_state (the SnapshotMeta), plus revision and
log_time_ms (the rest of StatePosition) and, if the state has an address record,
``members`` ({"<id>": "host:port"}; a file without it -- written by an older build --
restores a state without the record; older readers ignore the key). Payload records,
keys first (in key order) then sessions (by client id)::

    b"K" | u32 key length | u32 value length | u64 create | u64 mod | u64 version | key | value
    b"S" | u64 client id | u64 last seq | u64 last seen ms | u32 result length | result

Writing: one ``StateStore.export()`` view (an LMDB read transaction: a consistent state at
its applied index that never blocks the writer) is streamed into chunks of about
``chunk_bytes``; memory stays at one chunk plus one record. The file is written under a
temporary name, fsynced, renamed, and its directory fsynced, so a crash never leaves a
half-written file under a snapshot's name.

Reading checks every chunk's checksum, the record counts and the whole-file checksum;
any mismatch, a truncation or an unknown format raises :class:`SnapshotError` saying
which file, where, and what is wrong. Restoring streams the file into
``StateStore.replace`` (one write transaction): a bad file or a crash half way leaves the
old state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kvraft.core.types import ConfState, SnapshotMeta
from kvraft.errors import SnapshotError
from kvraft.fsutil import fsync_dir
from kvraft.storage.state_base import (
    KeyValue,
    Session,
    StateExport,
    StatePosition,
    StateStore,
)

MAGIC = b"KVRSNAP\n"
FORMAT_VERSION = 1
DEFAULT_CHUNK_BYTES = 1 << 20

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_CHUNK_HEAD = struct.Struct(">cII")
_TRAILER = struct.Struct(">cQQQ")
_KV_REC = struct.Struct(">cIIQQQ")
_SESSION_REC = struct.Struct(">cQQQI")
_MAX_HEADER = 1 << 20
_MAX_CHUNK = 1 << 30


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What a snapshot file holds (``kvraft snapshot status`` prints this)."""

    path: Path
    format_version: int
    position: StatePosition
    """Applied index/term, revision, log time and membership of the state it holds."""
    size_bytes: int
    keys: int = -1
    """Number of keys; -1 when only the header was read."""
    sessions: int = -1
    """Number of client sessions; -1 when only the header was read."""
    members: dict[int, str] | None = None
    """Member id -> address of the state (None: the file carries no address record)."""

    @property
    def meta(self) -> SnapshotMeta:
        p = self.position
        return SnapshotMeta(index=p.index, term=p.term, conf_state=p.conf_state)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (for ``kvraft snapshot status``)."""
        p = self.position
        return {
            "path": str(self.path),
            "format_version": self.format_version,
            "index": p.index,
            "term": p.term,
            "revision": p.revision,
            "log_time_ms": p.log_time_ms,
            "conf_state": p.conf_state.to_dict(),
            "size_bytes": self.size_bytes,
            "keys": self.keys,
            "sessions": self.sessions,
            "members": None if self.members is None else {
                str(i): a for i, a in sorted(self.members.items())
            },
        }


# ============================================================================ writing
class _Sink:
    """Writes bytes to a file, keeping the whole-file CRC."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.crc = 0  # crc32 of every byte written so far

    def write(self, data: bytes | bytearray) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.f.write(data)


def write_snapshot(
    store: StateStore, path: Path, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> SnapshotInfo:
    """Write the store's current state to ``path`` durably (temp file, fsync, rename,
    fsync of the directory). Returns what was written. The state is the one of a single
    consistent view; writers keep going meanwhile."""
    tmp = path.with_name(path.name + ".part")
    info = _write_file(store, tmp, chunk_bytes)
    return _publish(tmp, path, info)


def _write_file(store: StateStore, tmp: Path, chunk_bytes: int) -> SnapshotInfo:
    """Write a complete, fsynced snapshot to ``tmp`` (removed again on failure)."""
    try:
        with open(tmp, "wb") as f, store.export() as exp:
            sink = _Sink(f)
            _write_header(sink, exp.position, exp.members)
            keys, sessions, payload_bytes = _write_body(sink, exp, chunk_bytes)
            sink.write(_TRAILER.pack(b"E", keys, sessions, payload_bytes))
            f.write(_U32.pack(sink.crc))
            f.flush()
            os.fsync(f.fileno())
            position, members = exp.position, exp.members
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    size = tmp.stat().st_size
    return SnapshotInfo(tmp, FORMAT_VERSION, position, size, keys, sessions, members)


def _publish(tmp: Path, path: Path, info: SnapshotInfo) -> SnapshotInfo:
    """Rename a complete, fsynced file into place and make the rename durable."""
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return dataclasses.replace(info, path=path)


def _write_header(sink: _Sink, pos: StatePosition, members: dict[int, str] | None) -> None:
    doc: dict[str, object] = {
        "index": pos.index,
        "term": pos.term,
        "conf_state": pos.conf_state.to_dict(),
        "revision": pos.revision,
        "log_time_ms": pos.log_time_ms,
    }
    if members is not None:
        doc["members"] = {str(i): a for i, a in members.items()}
    body = json.dumps(doc, sort_keys=True).encode()
    sink.write(MAGIC + _U16.pack(FORMAT_VERSION) + _U32.pack(len(body)) + body)
    sink.write(_U32.pack(sink.crc))


def _write_body(sink: _Sink, exp: StateExport, chunk_bytes: int) -> tuple[int, int, int]:
    """Stream the export's records in chunks; returns (keys, sessions, payload bytes)."""
    chunk = _ChunkWriter(sink, chunk_bytes)
    keys = sessions = 0
    for kv in exp.key_values():
        chunk.add(
            _KV_REC.pack(
                b"K", len(kv.key), len(kv.value), kv.create_revision, kv.mod_revision, kv.version
            ),
            kv.key,
            kv.value,
        )
        keys += 1
    for s in exp.sessions():
        chunk.add(
            _SESSION_REC.pack(b"S", s.client_id, s.last_seq, s.last_seen_ms, len(s.result)),
            s.result,
        )
        sessions += 1
    chunk.flush()
    return keys, sessions, chunk.total


class _ChunkWriter:
    """Buffers records into chunks of about ``chunk_bytes`` and writes them sealed."""

    def __init__(self, sink: _Sink, chunk_bytes: int) -> None:
        self._sink = sink
        self._limit = chunk_bytes  # flush once the buffer holds at least this many bytes
        self._buf = bytearray()  # records of the chunk being built
        self._records = 0  # records in _buf
        self.total = 0  # payload bytes written so far

    def add(self, *parts: bytes) -> None:
        for part in parts:
            self._buf += part
        self._records += 1
        if len(self._buf) >= self._limit:
            self.flush()

    def flush(self) -> None:
        if not self._records:
            return
        buf = self._buf
        self._sink.write(_CHUNK_HEAD.pack(b"C", len(buf), self._records))
        self._sink.write(buf)
        self._sink.write(_U32.pack(zlib.crc32(buf)))
        self.total += len(buf)
        self._buf = bytearray()
        self._records = 0


# ============================================================================ reading
class _Source:
    """Reads a snapshot file exactly, keeping the whole-file CRC and the offset."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self.path = path
        self.offset = 0  # bytes consumed so far
        self.crc = 0  # crc32 of every byte consumed so far

    def fail(self, what: str) -> SnapshotError:
        return SnapshotError(f"snapshot {self.path}: {what} (at byte offset {self.offset})")

    def read(self, n: int, what: str) -> bytes:
        data = self._f.read(n)
        if len(data) != n:
            raise self.fail(f"truncated: {what} needs {n} bytes, only {len(data)} left")
        self.crc = zlib.crc32(data, self.crc)
        self.offset += n
        return data

    def at_eof(self) -> bool:
        return self._f.read(1) == b""


class SnapshotReader:
    """Sequential, checked reader of one snapshot file. Use as a context manager.

    ``info`` (from the header) is available at once; ``key_values()`` then ``sessions()``
    stream the records, each chunk checked before any of its records is returned; the end
    of ``sessions()`` checks the trailer (counts, whole-file checksum, nothing after it).
    Raises SnapshotError on any damage, naming the file and the offset."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")  # closed by close()
        except OSError as exc:
            raise SnapshotError(f"snapshot {path}: cannot open: {exc}") from exc
        try:
            self._src = _Source(self._f, self.path)
            self.info = self._read_header()
        except BaseException:
            self._f.close()
            raise
        self._records = self._iter_records()
        self._pending: Session | None = None  # first session, read while looking for keys
        self.keys = 0  # keys returned so far
        self.sessions_read = 0  # sessions returned so far
        self.done = False  # True once the trailer has been checked

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    def _read_header(self) -> SnapshotInfo:
        src = self._src
        magic = src.read(len(MAGIC), "magic")
        if magic != MAGIC:
            raise src.fail(f"not a kvraft snapshot (magic {magic!r})")
        (version,) = _U16.unpack(src.read(_U16.size, "format version"))
        if version != FORMAT_VERSION:
            raise src.fail(f"unknown snapshot format version {version} (this build reads 1)")
        (n,) = _U32.unpack(src.read(_U32.size, "header length"))
        if n > _MAX_HEADER:
            raise src.fail(f"header length {n} is implausible")
        body = src.read(n, "header")
        expect = src.crc
        (stored,) = _U32.unpack(src.read(_U32.size, "header checksum"))
        if stored != expect:
            raise src.fail("header failed its checksum")
        try:
            doc = json.loads(body)
            position = StatePosition(
                index=int(doc["index"]),
                term=int(doc["term"]),
                revision=int(doc["revision"]),
                log_time_ms=int(doc["log_time_ms"]),
                conf_state=ConfState.from_dict(doc["conf_state"]),
            )
            raw_members = doc.get("members")
            members = None if raw_members is None else {
                int(k): str(v) for k, v in raw_members.items()
            }
            if members is not None and not all(i > 0 and a for i, a in members.items()):
                raise ValueError(f"bad members {raw_members!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise src.fail(f"malformed header: {exc!r}") from exc
        size = os.fstat(self._f.fileno()).st_size
        return SnapshotInfo(self.path, version, position, size, members=members)

    def _iter_records(self) -> Iterator[KeyValue | Session]:
        src = self._src
        prev_key: bytes | None = None
        seen_session = False
        counts = [0, 0]  # keys, sessions
        total = 0
        while True:
            (kind,) = struct.unpack(">c", src.read(1, "chunk marker"))
            if kind == b"E":
                break
            if kind != b"C":
                raise src.fail(f"unknown chunk marker {kind!r}")
            _, length, nrec = _CHUNK_HEAD.unpack(kind + src.read(_CHUNK_HEAD.size - 1, "chunk"))
            if length > _MAX_CHUNK:
                raise src.fail(f"chunk length {length} is implausible")
            payload = src.read(length, "chunk payload")
            (stored,) = _U32.unpack(src.read(_U32.size, "chunk checksum"))
            if zlib.crc32(payload) != stored:
                raise src.fail("chunk failed its checksum")
            total += length
            records = _parse_chunk(payload, nrec, src)
            for rec in records:
                if isinstance(rec, KeyValue):
                    if seen_session or (prev_key is not None and rec.key <= prev_key):
                        raise src.fail(f"key {rec.key[:64]!r} out of order")
                    prev_key = rec.key
                    counts[0] += 1
                else:
                    seen_session = True
                    counts[1] += 1
                yield rec
        self._check_trailer(counts[0], counts[1], total)

    def _check_trailer(self, keys: int, sessions: int, total: int) -> None:
        src = self._src
        _, t_keys, t_sessions, t_total = _TRAILER.unpack(
            b"E" + src.read(_TRAILER.size - 1, "trailer")
        )
        expect = src.crc
        (stored,) = _U32.unpack(src.read(_U32.size, "file checksum"))
        if (t_keys, t_sessions, t_total) != (keys, sessions, total):
            raise src.fail(
                f"trailer says {t_keys} keys, {t_sessions} sessions, {t_total} bytes; "
                f"file holds {keys}, {sessions}, {total}"
            )
        if stored != expect:
            raise src.fail("whole-file checksum mismatch")
        if not src.at_eof():
            raise src.fail("unexpected bytes after the trailer")
        self.done = True

    def key_values(self) -> Iterator[KeyValue]:
        """The keys, in key order. Stops at the first session (kept for ``sessions()``)."""
        for rec in self._records:
            if isinstance(rec, Session):
                self._pending = rec
                return
            self.keys += 1
            yield rec

    def sessions(self) -> Iterator[Session]:
        """The sessions; call after ``key_values()`` is exhausted. Ends by checking the
        trailer, so a consumer that exhausts it has read a verified file."""
        if self._pending is not None:
            self.sessions_read += 1
            yield self._pending
            self._pending = None
        for rec in self._records:
            if isinstance(rec, KeyValue):
                raise self._src.fail("key record after the sessions")
            self.sessions_read += 1
            yield rec
        assert self.done


def _parse_chunk(payload: bytes, nrec: int, src: _Source) -> list[KeyValue | Session]:
    out: list[KeyValue | Session] = []
    mv = memoryview(payload)
    pos = 0
    try:
        while pos < len(payload):
            tag = payload[pos : pos + 1]
            if tag == b"K":
                _, klen, vlen, create, mod, version = _KV_REC.unpack_from(mv, pos)
                pos += _KV_REC.size
                key, value = bytes(mv[pos : pos + klen]), bytes(mv[pos + klen : pos + klen + vlen])
                pos += klen + vlen
                out.append(KeyValue(key, value, create, mod, version))
            elif tag == b"S":
                _, client, seq, seen, rlen = _SESSION_REC.unpack_from(mv, pos)
                pos += _SESSION_REC.size
                out.append(Session(client, seq, seen, bytes(mv[pos : pos + rlen])))
                pos += rlen
            else:
                raise src.fail(f"unknown record tag {tag!r} in chunk")
    except struct.error as exc:
        raise src.fail(f"malformed record in chunk: {exc}") from exc
    if pos != len(payload) or len(out) != nrec:
        raise src.fail(f"chunk holds {len(out)} records in {pos} bytes, expected {nrec}")
    return out


def read_info(path: Path) -> SnapshotInfo:
    """The snapshot's header (cheap: the records are not read or checked)."""
    with SnapshotReader(path) as r:
        return r.info


def verify(path: Path) -> SnapshotInfo:
    """Read the whole file and check every checksum; SnapshotError if anything is wrong.
    Returns the info with key and session counts."""
    with SnapshotReader(path) as r:
        for _ in r.key_values():
            pass
        for _ in r.sessions():
            pass
        return _counted(r)


def restore(store: StateStore, path: Path) -> SnapshotInfo:
    """Replace the store's whole state with the snapshot at ``path``, atomically.

    The file is checked while it streams into one write transaction; on any damage
    (SnapshotError) or crash the transaction is discarded and the old state stays."""
    with SnapshotReader(path) as r:
        store.replace(r.info.position, r.key_values(), r.sessions(), r.info.members)
        assert r.done, "replace() must consume the whole snapshot"
        return _counted(r)


def _counted(r: SnapshotReader) -> SnapshotInfo:
    return dataclasses.replace(r.info, keys=r.keys, sessions=r.sessions_read)


# ============================================================================ the directory
class SnapshotDir:
    """A node's snapshot directory: files ``snap-<index>-<term>.snap``, newest ``keep``.

    Leftover ``*.part`` files (a crash while writing or receiving) are removed on open.
    Pruning unlinks files; a reader that has one open (a snapshot streaming to a follower)
    keeps reading it until it closes it."""

    def __init__(
        self, path: Path, *, keep: int = 2, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> None:
        assert keep >= 1, "keep at least the newest snapshot"
        self.path = Path(path)  # the directory; created if missing
        self.keep = keep  # how many snapshots survive pruning (newest first)
        self.chunk_bytes = chunk_bytes  # target chunk size of files written here
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob("*.part"):
            stale.unlink()

    def path_for(self, index: int, term: int) -> Path:
        return self.path / f"snap-{index:020d}-{term:020d}.snap"

    def list(self) -> list[Path]:
        """Snapshot files, oldest first."""
        return sorted(self.path.glob("snap-*.snap"))

    def latest(self) -> SnapshotInfo | None:
        """Header of the newest snapshot whose header reads cleanly (None if none)."""
        for path in reversed(self.list()):
            try:
                return read_info(path)
            except SnapshotError:
                continue
        return None

    def create(self, store: StateStore) -> SnapshotInfo:
        """Snapshot the store's current state into this directory, then prune."""
        tmp = self.path / f"create-{uuid.uuid4().hex}.part"
        info = _write_file(store, tmp, self.chunk_bytes)
        info = _publish(tmp, self.path_for(info.position.index, info.position.term), info)
        self.prune()
        return info

    def incoming(self) -> Path:
        """A fresh temporary path to receive a snapshot's bytes into (then ``install``)."""
        return self.path / f"incoming-{uuid.uuid4().hex}.part"

    def install(self, received: Path) -> SnapshotInfo:
        """Verify a received file completely, make it durable and move it into place.
        SnapshotError (and the file removed) if it is damaged."""
        try:
            info = verify(received)
            with open(received, "rb") as f:
                os.fsync(f.fileno())
        except BaseException:
            received.unlink(missing_ok=True)
            raise
        info = _publish(received, self.path_for(info.position.index, info.position.term), info)
        self.prune()
        return info

    def prune(self) -> None:
        """Delete all but the newest ``keep`` snapshots."""
        files = self.list()
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)
        fsync_dir(self.path)
