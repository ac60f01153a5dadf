"""Checksummed record encodings of the Raft log store (stdlib only: struct + zlib CRC32).

Every stored value starts with a CRC32 over (LMDB key, rest of the value), so a damaged
value, or a value found under the wrong key, fails its check. Decoders raise Corrupted
with the message naming the database and the key or index.

    raft_log   u64 index (big endian)  ->  crc u32 | term u64 | type u8 | data
    raft_meta  b"hard_state"           ->  crc u32 | term u64 | vote u64 | commit u64
               b"snapshot"             ->  crc u32 | index u64 | term u64 | conf state JSON
               b"conf_state"           ->  crc u32 | conf state JSON
               b"format"               ->  crc u32 | b"kvraft-log/1"
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

from kvraft.core.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from kvraft.errors import Corrupted

_CRC = struct.Struct(">I")
_INDEX = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct(">IQB")  # crc, term, type
_TERM_TYPE = struct.Struct(">QB")
_HARD = struct.Struct(">QQQ")
_SNAP_HEAD = struct.Struct(">QQ")

ENTRY_OVERHEAD = _ENTRY_HEAD.size
"""Bytes a stored entry takes beyond its data (the LMDB key is another 8)."""


def index_key(index: int) -> bytes:
    """The LMDB key of log index ``index``: big-endian u64, so keys sort by index."""
    return _INDEX.pack(index)


def key_index(key: bytes | memoryview) -> int:
    return int(_INDEX.unpack(key)[0])


# ============================================================================ log entries
def encode_entries(entries: Sequence[Entry]) -> list[tuple[bytes, bytes]]:
    """(LMDB key, stored value) of each entry, in order."""
    out = []
    for ent in entries:
        key = _INDEX.pack(ent.index)
        body = _TERM_TYPE.pack(ent.term, ent.type) + ent.data
        out.append((key, _CRC.pack(zlib.crc32(body, zlib.crc32(key))) + body))
    return out


def entry_term(db: str, index: int, key: bytes | memoryview, value: bytes | memoryview) -> int:
    """Check a stored entry's checksum and return its term (no copy of the data)."""
    if len(value) < _ENTRY_HEAD.size:
        raise Corrupted(f"database {db!r} entry {index}: record truncated ({len(value)} bytes)")
    crc, term, typ = _ENTRY_HEAD.unpack_from(value)
    if zlib.crc32(memoryview(value)[_CRC.size :], zlib.crc32(key)) != crc:
        raise Corrupted(f"database {db!r} entry {index}: checksum mismatch")
    if typ not in _ENTRY_TYPES:
        raise Corrupted(f"database {db!r} entry {index}: unknown entry type {typ}")
    return int(term)


def decode_entry(db: str, index: int, key: bytes | memoryview, value: bytes | memoryview) -> Entry:
    """The Entry stored under ``key``; Corrupted (naming db and index) if it is damaged."""
    term = entry_term(db, index, key, value)
    typ = _ENTRY_TYPES[value[_ENTRY_HEAD.size - 1]]
    return Entry(term, index, typ, bytes(value[_ENTRY_HEAD.size :]))


_ENTRY_TYPES = {int(t): t for t in EntryType}


# ============================================================================ metadata
def seal(key: bytes, payload: bytes) -> bytes:
    """Prefix ``payload`` with the CRC32 of (key, payload)."""
    return _CRC.pack(zlib.crc32(payload, zlib.crc32(key))) + payload


def unseal(db: str, key: bytes, value: bytes | memoryview) -> bytes:
    """The payload of a sealed record; Corrupted (naming db and key) if it is damaged."""
    if len(value) < _CRC.size:
        raise Corrupted(f"database {db!r} key {key!r}: record truncated ({len(value)} bytes)")
    payload = bytes(value[_CRC.size :])
    if zlib.crc32(payload, zlib.crc32(key)) != _CRC.unpack_from(value)[0]:
        raise Corrupted(f"database {db!r} key {key!r}: checksum mismatch")
    return payload


def encode_hard_state(hs: HardState) -> bytes:
    return _HARD.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(db: str, key: bytes, payload: bytes) -> HardState:
    if len(payload) != _HARD.size:
        raise Corrupted(f"database {db!r} key {key!r}: hard state of {len(payload)} bytes")
    return HardState(*_HARD.unpack(payload))


def encode_conf_state(cs: ConfState) -> bytes:
    return json.dumps(cs.to_dict(), separators=(",", ":"), sort_keys=True).encode()


def decode_conf_state(db: str, key: bytes, payload: bytes) -> ConfState:
    try:
        d = json.loads(payload)
        return ConfState.from_dict({k: [int(n) for n in d[k]] for k in d})
    except (ValueError, TypeError, AttributeError) as exc:
        raise Corrupted(f"database {db!r} key {key!r}: bad conf state: {exc}") from exc


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    return _SNAP_HEAD.pack(meta.index, meta.term) + encode_conf_state(meta.conf_state)


def decode_snapshot_meta(db: str, key: bytes, payload: bytes) -> SnapshotMeta:
    if len(payload) < _SNAP_HEAD.size:
        raise Corrupted(f"database {db!r} key {key!r}: snapshot meta of {len(payload)} bytes")
    index, term = _SNAP_HEAD.unpack_from(payload)
    cs = decode_conf_state(db, key, payload[_SNAP_HEAD.size :])
    return SnapshotMeta(index=index, term=term, conf_state=cs)
