"""LmdbStateStore: the KV state machine's state in named sub-databases of the node's LMDB
environment (shared with the log store, so one node has one environment and one file).

Layout (every value starts with a CRC32 over the LMDB key and the rest of the value):

    state_kv           key -> crc | create_rev u64 | mod_rev u64 | version u64 | value
    state_sessions     client_id u64 -> crc | last_seq u64 | last_seen_ms u64 | result
    state_session_ttl  last_seen_ms u64 | client_id u64 -> crc      (expiry index)
    state_meta         b"position" -> crc | index u64 | term u64 | revision u64
                                        | log_time_ms u64 | conf state (JSON)
                       b"members"  -> crc | JSON {"<id>": "host:port"} (member addresses,
                                        written only by applied conf changes/restores)

Long keys. LMDB keys are at most 511 bytes, user keys up to several KiB. A key of at most
``SHORT_KEY_MAX`` bytes is its own LMDB key. A longer key K is stored under
``K[:SHORT_KEY_MAX] + b"\\0" + blake2b(K, 16 bytes)`` with the rest of K in its record. All
long keys sharing a prefix P are adjacent in LMDB and sort after P itself and before any
other key > P, so a scan keeps byte order by sorting each such group in memory (only keys
longer than 494 bytes with identical first 494 bytes share a group).

Transactions: a read view is an LMDB read transaction (MVCC: never blocks the writer, never
blocked by it); the write view is one LMDB write transaction, durable at commit if the
environment syncs (the log store opens it with sync on).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import lmdb

from kvraft.core.types import ConfState
from kvraft.errors import Corrupted, StorageError
from kvraft.storage.state_base import (
    KeyValue,
    RangeResult,
    Session,
    StatePosition,
)

SHORT_KEY_MAX = 494
"""Keys up to this many bytes are stored as themselves (494 + 1 + 16 = 511, LMDB's max)."""

DB_KV = b"state_kv"
DB_SESSIONS = b"state_sessions"
DB_SESSION_TTL = b"state_session_ttl"
DB_META = b"state_meta"
_ALL_DBS = (DB_KV, DB_SESSIONS, DB_SESSION_TTL, DB_META)
_POSITION_KEY = b"position"
_MEMBERS_KEY = b"members"

_CRC = struct.Struct(">I")
_KV_HEAD = struct.Struct(">QQQ")
_LONG_TAIL_LEN = struct.Struct(">I")
_SESSION_HEAD = struct.Struct(">QQ")
_U64 = struct.Struct(">Q")
_TTL_KEY = struct.Struct(">QQ")
_POSITION_HEAD = struct.Struct(">QQQQ")


# ============================================================================ record codec
def _seal(lkey: bytes, payload: bytes) -> bytes:
    """Prefix ``payload`` with the CRC32 of (LMDB key, payload)."""
    return _CRC.pack(zlib.crc32(payload, zlib.crc32(lkey))) + payload


def _open(db: bytes, lkey: bytes, raw: bytes) -> memoryview:
    """Check a sealed record and return its payload; Corrupted names db and key."""
    if len(raw) < _CRC.size:
        raise Corrupted(f"{_where(db, lkey)} is truncated ({len(raw)} bytes)")
    payload = memoryview(raw)[_CRC.size :]
    (stored,) = _CRC.unpack_from(raw)
    if zlib.crc32(payload, zlib.crc32(lkey)) != stored:
        raise Corrupted(f"{_where(db, lkey)} failed its checksum")
    return payload


def _where(db: bytes, lkey: bytes) -> str:
    shown = lkey if len(lkey) <= 64 else lkey[:64] + b"..."
    return f"state store record {shown!r} in LMDB database {db.decode()!r}"


def _kv_lkey(key: bytes) -> bytes:
    if len(key) <= SHORT_KEY_MAX:
        return key
    return key[:SHORT_KEY_MAX] + b"\0" + hashlib.blake2b(key, digest_size=16).digest()


def _encode_kv(kv: KeyValue) -> tuple[bytes, bytes]:
    lkey = _kv_lkey(kv.key)
    head = _KV_HEAD.pack(kv.create_revision, kv.mod_revision, kv.version)
    if lkey is kv.key:
        return lkey, _seal(lkey, head + kv.value)
    tail = kv.key[SHORT_KEY_MAX:]
    return lkey, _seal(lkey, head + _LONG_TAIL_LEN.pack(len(tail)) + tail + kv.value)


def _decode_kv(lkey: bytes, raw: bytes) -> KeyValue:
    p = _open(DB_KV, lkey, raw)
    if len(p) < _KV_HEAD.size:
        raise Corrupted(f"{_where(DB_KV, lkey)} is too short to decode")
    create, mod, version = _KV_HEAD.unpack_from(p)
    rest = p[_KV_HEAD.size :]
    if len(lkey) <= SHORT_KEY_MAX:
        return KeyValue(lkey, bytes(rest), create, mod, version)
    (tail_len,) = _LONG_TAIL_LEN.unpack_from(rest)
    start = _LONG_TAIL_LEN.size
    key = lkey[:SHORT_KEY_MAX] + bytes(rest[start : start + tail_len])
    return KeyValue(key, bytes(rest[start + tail_len :]), create, mod, version)


def _encode_session(s: Session) -> tuple[bytes, bytes]:
    lkey = _U64.pack(s.client_id)
    return lkey, _seal(lkey, _SESSION_HEAD.pack(s.last_seq, s.last_seen_ms) + s.result)


def _decode_session(lkey: bytes, raw: bytes) -> Session:
    p = _open(DB_SESSIONS, lkey, raw)
    if len(p) < _SESSION_HEAD.size or len(lkey) != _U64.size:
        raise Corrupted(f"{_where(DB_SESSIONS, lkey)} is malformed")
    seq, seen = _SESSION_HEAD.unpack_from(p)
    return Session(_U64.unpack(lkey)[0], seq, seen, bytes(p[_SESSION_HEAD.size :]))


class _PositionCodec:
    """Encodes and decodes the position record, remembering the last of each: a record is
    read many times per write (one decode), and its membership part -- JSON -- changes
    rarely while the rest changes with every apply (one JSON encoding or decoding per
    membership). Each memo is one tuple replaced whole, so the I/O thread and the event
    loop may share them."""

    def __init__(self) -> None:
        self._read: tuple[bytes, StatePosition] = (b"", StatePosition())  # record, decoded
        self._conf_in: tuple[bytes, ConfState] = (b"", ConfState())  # JSON, decoded
        self._conf_out: tuple[ConfState, bytes] = (ConfState(), b"")  # membership, JSON

    def encode(self, pos: StatePosition) -> bytes:
        head = _POSITION_HEAD.pack(pos.index, pos.term, pos.revision, pos.log_time_ms)
        last_conf, conf = self._conf_out
        if pos.conf_state != last_conf or not conf:
            conf = json.dumps(pos.conf_state.to_dict(), separators=(",", ":")).encode()
            self._conf_out = (pos.conf_state, conf)
        return _seal(_POSITION_KEY, head + conf)

    def decode(self, raw: bytes) -> StatePosition:
        last_raw, last = self._read
        if last_raw == raw:
            return last
        p = _open(DB_META, _POSITION_KEY, raw)
        try:
            index, term, revision, log_time = _POSITION_HEAD.unpack_from(p)
            body = bytes(p[_POSITION_HEAD.size :])
            last_body, conf = self._conf_in
            if body != last_body:
                conf = ConfState.from_dict(json.loads(body))
                self._conf_in = (body, conf)
        except (struct.error, ValueError, TypeError, AttributeError) as exc:
            raise Corrupted(f"{_where(DB_META, _POSITION_KEY)} is malformed: {exc}") from exc
        pos = StatePosition(index, term, revision, log_time, conf)
        self._read = (bytes(raw), pos)
        return pos


def _encode_members(members: Mapping[int, str]) -> bytes:
    assert all(i > 0 and a for i, a in members.items()), f"bad member record {members!r}"
    doc = {str(i): members[i] for i in sorted(members)}
    return _seal(_MEMBERS_KEY, json.dumps(doc, separators=(",", ":")).encode())


def _decode_members(raw: bytes) -> dict[int, str]:
    p = _open(DB_META, _MEMBERS_KEY, raw)
    try:
        doc = json.loads(bytes(p))
        return {int(k): str(v) for k, v in doc.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise Corrupted(f"{_where(DB_META, _MEMBERS_KEY)} is malformed: {exc}") from exc


# ============================================================================ views
class _Dbs:
    """Handles of the four sub-databases (opened once per store)."""

    def __init__(self, env: Any) -> None:
        self.kv = env.open_db(DB_KV)
        self.sessions = env.open_db(DB_SESSIONS)
        self.ttl = env.open_db(DB_SESSION_TTL)
        self.meta = env.open_db(DB_META)
        self.positions = _PositionCodec()  # the position record's codec and its memos


class _Reader:
    """A StateReader over one LMDB transaction (read-only or write)."""

    def __init__(self, txn: Any, dbs: _Dbs) -> None:
        self._txn = txn  # the transaction this view reads; valid until its block ends
        self._dbs = dbs

    def position(self) -> StatePosition:
        raw = self._txn.get(_POSITION_KEY, db=self._dbs.meta)
        if raw is None:
            return StatePosition()
        return self._dbs.positions.decode(raw)

    def get(self, key: bytes) -> KeyValue | None:
        lkey = _kv_lkey(key)
        raw = self._txn.get(lkey, db=self._dbs.kv)
        if raw is None:
            return None
        kv = _decode_kv(lkey, raw)
        assert kv.key == key, f"blake2b collision between {kv.key!r} and {key!r}"
        return kv

    def range(
        self, start: bytes, end: bytes | None = None, *, limit: int = 0, count: bool = True
    ) -> RangeResult:
        scan = _Scan(self._txn, self._dbs.kv, start, end)
        kvs: list[KeyValue] = []
        total = 0
        for kv in scan:
            total += 1
            if limit <= 0 or len(kvs) < limit:
                assert kv is not None
                kvs.append(kv)
                if len(kvs) == limit:
                    scan.want_values = False
            elif not count:
                break
        return RangeResult(kvs=kvs, more=total > len(kvs), count=total)

    def session(self, client_id: int) -> Session | None:
        lkey = _U64.pack(client_id)
        raw = self._txn.get(lkey, db=self._dbs.sessions)
        return None if raw is None else _decode_session(lkey, raw)

    def sessions_seen_before(self, time_ms: int, limit: int) -> list[int]:
        out: list[int] = []
        cur = self._txn.cursor(db=self._dbs.ttl)
        if not cur.first():
            return out
        for lkey, raw in cur.iternext():
            _open(DB_SESSION_TTL, lkey, raw)
            seen, client_id = _TTL_KEY.unpack(lkey)
            if seen >= time_ms or len(out) >= limit:
                break
            out.append(client_id)
        return out

    def members(self) -> dict[int, str] | None:
        raw = self._txn.get(_MEMBERS_KEY, db=self._dbs.meta)
        return None if raw is None else _decode_members(raw)


class _Writer(_Reader):
    """The StateWriter over the one LMDB write transaction."""

    def put(self, kv: KeyValue) -> None:
        assert kv.key, "empty keys are rejected before they reach the store"
        lkey, raw = _encode_kv(kv)
        self._txn.put(lkey, raw, db=self._dbs.kv)

    def delete(self, key: bytes) -> bool:
        return bool(self._txn.delete(_kv_lkey(key), db=self._dbs.kv))

    def put_session(self, session: Session) -> None:
        assert session.client_id > 0, "client id 0 means no session"
        lkey, raw = _encode_session(session)
        old = self._txn.replace(lkey, raw, db=self._dbs.sessions)
        if old is not None:
            seen = _decode_session(lkey, old).last_seen_ms
            self._txn.delete(_TTL_KEY.pack(seen, session.client_id), db=self._dbs.ttl)
        tkey = _TTL_KEY.pack(session.last_seen_ms, session.client_id)
        self._txn.put(tkey, _seal(tkey, b""), db=self._dbs.ttl)

    def delete_session(self, client_id: int) -> bool:
        old = self.session(client_id)
        if old is None:
            return False
        self._txn.delete(_U64.pack(client_id), db=self._dbs.sessions)
        self._txn.delete(_TTL_KEY.pack(old.last_seen_ms, client_id), db=self._dbs.ttl)
        return True

    def set_position(self, position: StatePosition) -> None:
        self._txn.put(_POSITION_KEY, self._dbs.positions.encode(position), db=self._dbs.meta)

    def set_members(self, members: Mapping[int, str]) -> None:
        self._txn.put(_MEMBERS_KEY, _encode_members(members), db=self._dbs.meta)


class _Scan:
    """Iterates the keys of [start, end) in byte order over an LMDB cursor.

    Yields a KeyValue per key, or None for a key whose value was not read because the
    consumer set ``want_values = False`` (counting). Long-key groups (see module doc) are
    read whole and sorted."""

    def __init__(self, txn: Any, db: Any, start: bytes, end: bytes | None) -> None:
        self._cur = txn.cursor(db=db)
        self._start = start
        self._end = end
        self.want_values = True  # read and decode values (else yield None for short keys)

    def _in_range(self, key: bytes) -> int:
        """-1 below start, 0 inside, 1 at or beyond end."""
        if key < self._start:
            return -1
        return 1 if self._end is not None and key >= self._end else 0

    def __iter__(self) -> Iterator[KeyValue | None]:
        cur = self._cur
        if not cur.set_range(self._start[:SHORT_KEY_MAX]):
            return
        group: list[KeyValue] = []  # long keys sharing group_prefix, in LMDB (hash) order
        group_prefix = b""
        for lkey in cur.iternext(keys=True, values=False):
            if len(lkey) > SHORT_KEY_MAX:
                prefix = lkey[:SHORT_KEY_MAX]
                if group and prefix != group_prefix:
                    if (yield from self._flush(group)):
                        return
                    group = []
                if not group and self._end is not None and prefix >= self._end:
                    return  # every key of this group is longer than prefix, so > end
                group_prefix = prefix
                group.append(_decode_kv(lkey, cur.value()))
                continue
            if group:
                if (yield from self._flush(group)):
                    return
                group = []
            where = self._in_range(lkey)
            if where > 0:
                return
            if where == 0:
                yield _decode_kv(lkey, cur.value()) if self.want_values else None
        if group:
            yield from self._flush(group)

    def _flush(self, group: list[KeyValue]) -> Generator[KeyValue | None, None, bool]:
        """Yield the group's in-range keys in order; returns True if the scan is done."""
        for kv in sorted(group, key=lambda kv: kv.key):
            where = self._in_range(kv.key)
            if where > 0:
                return True
            if where == 0:
                yield kv
        return False


class _Export:
    """StateExport over one read transaction (see LmdbStateStore.export)."""

    def __init__(self, txn: Any, dbs: _Dbs) -> None:
        self._txn = txn
        self._dbs = dbs
        reader = _Reader(txn, dbs)
        self.position = reader.position()
        self.members = reader.members()

    def key_values(self) -> Iterator[KeyValue]:
        for kv in _Scan(self._txn, self._dbs.kv, b"", None):
            assert kv is not None
            yield kv

    def sessions(self) -> Iterator[Session]:
        cur = self._txn.cursor(db=self._dbs.sessions)
        if cur.first():
            for lkey, raw in cur.iternext():
                yield _decode_session(lkey, raw)


# ============================================================================ the store
class LmdbStateStore:
    """The StateStore (see state_base) over an open LMDB environment it does not own.

    The environment must allow at least 4 named databases besides the caller's own
    (``max_dbs``); the log store opens it. Safe to use from several threads: each view is
    its own transaction; one write view at a time (LMDB serializes writers).
    """

    def __init__(self, env: Any) -> None:
        self._env = env  # the node's LMDB environment; owned (and closed) by the log store
        try:
            self._dbs = _Dbs(env)
        except lmdb.Error as exc:
            raise StorageError(f"cannot open the state store databases: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[_Reader]:
        with self._env.begin(buffers=False) as txn:
            yield _Reader(txn, self._dbs)

    @contextmanager
    def write(self) -> Iterator[_Writer]:
        txn = self._env.begin(write=True)
        try:
            yield _Writer(txn, self._dbs)
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except lmdb.Error as exc:
            raise StorageError(f"state store commit failed: {exc}") from exc

    @property
    def env(self) -> Any:
        """The LMDB environment the state lives in (the log store's)."""
        return self._env

    def write_in(self, txn: Any) -> _Writer:
        """A StateWriter over ``txn``, an open write transaction of ``env`` that the
        caller commits or aborts (the log store's, so that a Ready's log save and the
        apply of its committed entries are one durable commit). Valid until ``txn``
        ends; what it writes is visible to readers only once ``txn`` commits."""
        return _Writer(txn, self._dbs)

    def position(self) -> StatePosition:
        with self.read() as r:
            return r.position()

    def get(self, key: bytes) -> KeyValue | None:
        """Shortcut: ``get`` in a fresh read view."""
        with self._env.begin() as txn:
            return _Reader(txn, self._dbs).get(key)

    @contextmanager
    def export(self) -> Iterator[_Export]:
        with self._env.begin() as txn:
            yield _Export(txn, self._dbs)

    def replace(
        self, position: StatePosition, key_values: Iterable[KeyValue], sessions: Iterable[Session],
        members: Mapping[int, str] | None = None,
    ) -> None:
        dbs = self._dbs
        try:
            with self._env.begin(write=True) as txn:
                for db in (dbs.kv, dbs.sessions, dbs.ttl, dbs.meta):
                    txn.drop(db, delete=False)
                w = _Writer(txn, dbs)
                prev: bytes | None = None
                for kv in key_values:
                    assert prev is None or prev < kv.key, f"keys out of order at {kv.key!r}"
                    prev = kv.key
                    w.put(kv)
                for s in sessions:
                    w.put_session(s)
                w.set_position(position)
                if members is not None:
                    w.set_members(members)
        except lmdb.Error as exc:
            raise StorageError(f"state store replace failed (nothing changed): {exc}") from exc
