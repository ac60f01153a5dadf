"""LmdbLogStore: the durable LogStore of a node, in the node's one LMDB environment.

Layout: sub-database ``raft_log`` maps big-endian u64 index -> checksummed entry;
``raft_meta`` holds hard state, membership, snapshot metadata and a format tag (see
kvraft/storage/records.py). The KV state store shares the environment (``env``,
``open_db``) and keeps its own sub-databases; it must not use names starting "raft_".

Durability. The environment is opened with sync=True, metasync=True, map_async=False,
writemap=False: a write transaction's commit writes the data pages, fdatasyncs, writes the
new meta page and fdatasyncs again before returning, so a committed transaction survives
kill -9 and power loss, and an interrupted one leaves the previous meta page in force
(all or nothing). metasync=False would skip the second flush and could lose the last
acknowledged transaction on a power cut; map_async/writemap would leave the flush to the
kernel's schedule (and let a stray write through the map damage the file). We pay one
fsync pair per transaction and keep it to one transaction per Ready (group commit).

Hot path. term(), first_index(), last_index(), snapshot_meta() and initial_state() never
touch the disk: they answer from an immutable in-memory view (bounds, hard state, and the
log's terms as runs of (first index, term)), rebuilt by the single writer and swapped in
with one assignment after each commit. Readers on other threads therefore see the state
before or after a write, never a mix. The view also keeps the log's tail: the last
entries saved (up to ``tail_entries`` of them and ``TAIL_BYTES``), the very objects the
core handed to save(). entries() answers from it when it covers the range -- the usual
case: a follower applies, and a leader sends or applies, what it wrote a Ready or two ago
-- and otherwise reads LMDB in a read transaction (MVCC: never blocks the writer); an
entry that vanished under a concurrent compaction is reported as Compacted, a hole inside
the log as Corrupted. Damage done to the file under an entry still in the tail is
therefore found when the entry is read after it left the tail, or on the next open.

Opening a store checks every record (checksums, contiguity, agreement of the log with the
snapshot and hard state) and raises Corrupted naming the database and index on damage.
"""

from __future__ import annotations

import bisect
import dataclasses
import fcntl
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lmdb

from kvraft.core.types import ConfState, Entry, HardState, SnapshotMeta, extend_within
from kvraft.errors import Compacted, Corrupted, StorageError, Unavailable
from kvraft.fsutil import fsync_dir
from kvraft.storage import records as rec
from kvraft.storage.base import LogStore
from kvraft.storage.plan import LogBounds, check_compact, plan_save

DEFAULT_MAP_SIZE = 64 << 30
"""Virtual size of the LMDB map; address space only, the file grows as data is written."""

TAIL_ENTRIES = 1024
"""Entries the view keeps in memory at most (the newest ones saved; 0: none)."""

TAIL_BYTES = 8 << 20
"""...and at most this many bytes of them (``Entry.size``): one large entry may exceed it."""

MAX_DBS = 16
"""Named sub-databases the environment allows: 2 for the log store, the rest for others."""

DB_LOG = "raft_log"
DB_META = "raft_meta"
_HARD = b"hard_state"
_CONF = b"conf_state"
_SNAP = b"snapshot"
_FORMAT = b"format"
_FORMAT_TAG = b"kvraft-log/1"


@dataclass(frozen=True, slots=True)
class _View:
    """What the store holds, as of the last commit. Immutable: replaced, never changed."""

    snap: SnapshotMeta  # latest snapshot; first index == snap.index + 1
    last: int  # last index in the log (snap.index if empty); >= snap.index
    hard: HardState  # saved hard state; hard.commit <= last
    conf: ConfState  # saved membership
    starts: tuple[int, ...]  # first index of each run of equal terms; starts[0] == snap.index + 1
    terms: tuple[int, ...]  # term of each run, non-decreasing; len(terms) == len(starts)
    # the newest entries, contiguous and ending at `last` (or empty), all after snap.index
    tail: tuple[Entry, ...] = ()
    tail_bytes: int = 0  # sum of their sizes

    def term(self, index: int) -> int:
        if index > self.last:
            raise Unavailable(f"term of entry {index}: beyond last index {self.last}")
        if index <= self.snap.index:
            if index == self.snap.index:
                return self.snap.term
            raise Compacted(f"term of entry {index}: compacted (snapshot {self.snap.index})")
        return self.terms[bisect.bisect_right(self.starts, index) - 1]

    def bounds(self) -> LogBounds:
        return LogBounds(self.snap, self.last, self.hard)


def _runs_after(starts: Sequence[int], terms: Sequence[int], first: int, last: int) -> _Runs:
    """The runs restricted to indexes [first, last]."""
    out_s: list[int] = []
    out_t: list[int] = []
    for k, s in enumerate(starts):
        end = starts[k + 1] - 1 if k + 1 < len(starts) else last
        lo, hi = max(s, first), min(end, last)
        if lo <= hi:
            out_s.append(lo)
            out_t.append(terms[k])
    return out_s, out_t


_Runs = tuple[list[int], list[int]]


def _runs_append(runs: _Runs, entries: Sequence[Entry]) -> None:
    starts, terms = runs
    for e in entries:
        if not terms or terms[-1] != e.term:
            starts.append(e.index)
            terms.append(e.term)


_Tail = tuple[tuple[Entry, ...], int]


def _tail_between(tail: _Tail, first: int, last: int) -> _Tail:
    """The part of ``tail`` with indexes in [first, last]."""
    entries, nbytes = tail
    if not entries:
        return tail
    lo = max(first - entries[0].index, 0)
    hi = max(last - entries[0].index + 1, 0)
    if lo == 0 and hi >= len(entries):
        return tail
    kept = entries[lo:hi]
    return kept, sum(e.size() for e in kept)


def _tail_extend(tail: _Tail, new: Sequence[Entry], max_entries: int) -> _Tail:
    """``tail`` followed by ``new`` (contiguous with it), cut to the newest entries that
    fit both limits."""
    entries = tail[0] + tuple(new)
    nbytes = tail[1] + sum(e.size() for e in new)
    cut = max(len(entries) - max_entries, 0)
    for e in entries[:cut]:
        nbytes -= e.size()
    while cut < len(entries) - 1 and nbytes > TAIL_BYTES:
        nbytes -= entries[cut].size()
        cut += 1
    if cut >= len(entries) or nbytes > TAIL_BYTES:
        return (), 0
    return (entries[cut:], nbytes) if cut else (entries, nbytes)


class LmdbLogStore:
    """A LogStore in an LMDB environment at ``path`` (a directory, created if missing).

    One writer thread at a time (the runtime's persistence thread); the read methods may
    be called from any thread meanwhile. Raises Corrupted if the stored log is damaged,
    StorageError if the environment cannot be opened.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE,
        tail_entries: int = TAIL_ENTRIES,
    ) -> None:
        self._path = Path(path)  # the environment's directory
        self._tail_entries = tail_entries  # newest entries kept in the view (0: none)
        self._closed = False  # True after close(); every call then raises StorageError
        self._lock_fd = _lock_dir(self._path)  # exclusive flock: one process per store
        try:
            self._env = _open_env(self._path, map_size)  # the node's one LMDB environment
        except BaseException:
            os.close(self._lock_fd)
            raise
        try:
            self._log = self._env.open_db(DB_LOG.encode())  # index -> entry
            self._meta = self._env.open_db(DB_META.encode())  # metadata records
            self._view = self._load()  # the state as of the last commit
        except BaseException as exc:
            self._env.close()
            os.close(self._lock_fd)
            if isinstance(exc, lmdb.Error):
                raise StorageError(f"{self._where()}: cannot read the store: {exc}") from exc
            raise

    # ------------------------------------------------------------------ sharing
    @property
    def env(self) -> lmdb.Environment:
        """The node's LMDB environment (owned by this store: close() closes it)."""
        self._check_open()
        return self._env

    def open_db(self, name: str) -> lmdb._Database:
        """Open (creating if needed) the named sub-database ``name`` for another store."""
        self._check_open()
        if name.startswith("raft_"):
            raise ValueError(f"sub-database names starting 'raft_' are the log's: {name!r}")
        return self._env.open_db(name.encode())

    def disk_size(self) -> int:
        """Approximate bytes used in the data file (all sub-databases, incl. free pages)."""
        self._check_open()
        return (self._env.info()["last_pgno"] + 1) * self._env.stat()["psize"]

    # ------------------------------------------------------------------ LogReader
    def initial_state(self) -> tuple[HardState, ConfState]:
        v = self._current()
        return v.hard, v.conf

    def term(self, index: int) -> int:
        return self._current().term(index)

    def first_index(self) -> int:
        return self._current().snap.index + 1

    def last_index(self) -> int:
        return self._current().last

    def snapshot_meta(self) -> SnapshotMeta:
        return self._current().snap

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        v = self._current()
        if lo > hi:
            raise ValueError(f"entries: lo {lo} > hi {hi}")
        if lo <= v.snap.index:
            raise Compacted(f"entry {lo} compacted (first index {v.snap.index + 1})")
        if hi > v.last + 1:
            raise Unavailable(f"entry {hi - 1} unavailable (last index {v.last})")
        out: list[Entry] = []
        if lo == hi:
            return out
        tail = v.tail
        if tail and lo >= tail[0].index:  # hi <= last + 1, where the tail ends
            return extend_within([], tail[lo - tail[0].index : hi - tail[0].index], 0, max_bytes)
        total = 0
        try:
            with self._env.begin(db=self._log, buffers=True) as txn:
                cur = txn.cursor()
                index = lo
                if cur.set_key(rec.index_key(lo)):
                    for key, value in cur.iternext():
                        if rec.key_index(key) != index:
                            break
                        ent = rec.decode_entry(DB_LOG, index, key, value)
                        total += ent.size()
                        if out and max_bytes is not None and total > max_bytes:
                            return out
                        out.append(ent)
                        index += 1
                        if index == hi:
                            return out
                raise self._missing(txn, index)
        except lmdb.Error as exc:
            raise StorageError(f"{self._where()}: reading entries [{lo}, {hi}): {exc}") from exc

    # ------------------------------------------------------------------ writes
    def save(
        self,
        *,
        entries: Sequence[Entry] = (),
        hard_state: HardState | None = None,
        snapshot: SnapshotMeta | None = None,
        extra: Callable[[lmdb.Transaction], None] | None = None,
    ) -> None:
        """LogStore.save, plus ``extra``: if given, it is called with the open write
        transaction after the snapshot metadata, the entries and the hard state are
        written, and its writes commit with them in the same durable transaction (one
        fsync pair); the state store writes the apply of already durable committed
        entries this way (see kvraft/runtime/driver.py). ``extra`` must not begin another
        write transaction (LMDB has one writer: it would deadlock) nor write "raft_"
        databases. If it raises, nothing of the call is written and the error propagates
        (an LMDB error as StorageError)."""
        v = self._current()
        plan = plan_save(v.bounds(), v.term, entries, hard_state, snapshot)
        if plan.snapshot is None and not plan.entries and plan.hard_state is None and (
            extra is None
        ):
            return
        runs = list(v.starts), list(v.terms)
        snap, conf, last = v.snap, v.conf, v.last
        tail: _Tail = (v.tail, v.tail_bytes)
        with self._write("save") as txn:
            if plan.snapshot is not None:
                snap, conf = plan.snapshot, plan.snapshot.conf_state
                if plan.keep_log:
                    self._delete_from(txn, v.snap.index + 1, upto=snap.index)
                    runs = _runs_after(runs[0], runs[1], snap.index + 1, last)
                    tail = _tail_between(tail, snap.index + 1, last)
                else:
                    txn.drop(self._log, delete=False)
                    runs, last, tail = ([], []), snap.index, ((), 0)
                self._put_meta(txn, _SNAP, rec.encode_snapshot_meta(snap))
                self._put_meta(txn, _CONF, rec.encode_conf_state(conf))
            if plan.entries:
                start = plan.entries[0].index
                if start <= last:
                    self._delete_from(txn, start)
                    runs = _runs_after(runs[0], runs[1], snap.index + 1, start - 1)
                    tail = _tail_between(tail, snap.index + 1, start - 1)
                txn.cursor(db=self._log).putmulti(rec.encode_entries(plan.entries), append=True)
                _runs_append(runs, plan.entries)
                last = plan.last_index
                tail = _tail_extend(tail, plan.entries, self._tail_entries)
            hard = v.hard
            if plan.hard_state is not None:
                hard = plan.hard_state
                self._put_meta(txn, _HARD, rec.encode_hard_state(hard))
            if extra is not None:
                extra(txn)
        self._view = _View(snap, last, hard, conf, tuple(runs[0]), tuple(runs[1]), *tail)

    def compact(self, meta: SnapshotMeta) -> None:
        v = self._current()
        check_compact(v.bounds(), v.term, meta)
        with self._write("compact") as txn:
            self._delete_from(txn, v.snap.index + 1, upto=meta.index)
            self._put_meta(txn, _SNAP, rec.encode_snapshot_meta(meta))
        starts, terms = _runs_after(v.starts, v.terms, meta.index + 1, v.last)
        tail = _tail_between((v.tail, v.tail_bytes), meta.index + 1, v.last)
        self._view = _View(meta, v.last, v.hard, v.conf, tuple(starts), tuple(terms), *tail)

    def save_conf_state(self, cs: ConfState) -> None:
        v = self._current()
        with self._write("save_conf_state") as txn:
            self._put_meta(txn, _CONF, rec.encode_conf_state(cs))
        self._view = dataclasses.replace(v, conf=cs)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._env.close()
            os.close(self._lock_fd)

    # ------------------------------------------------------------------ helpers
    def _where(self) -> str:
        return f"raft log store at {self._path}"

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self._where()} is closed")

    def _current(self) -> _View:
        self._check_open()
        return self._view

    def _write(self, what: str) -> _WriteTxn:
        self._check_open()
        return _WriteTxn(self, what)

    def _put_meta(self, txn: lmdb.Transaction, key: bytes, payload: bytes) -> None:
        txn.put(key, rec.seal(key, payload), db=self._meta)

    def _delete_from(self, txn: lmdb.Transaction, lo: int, upto: int | None = None) -> None:
        """Delete log entries with index >= lo (and <= upto, if given)."""
        cur = txn.cursor(db=self._log)
        end = None if upto is None else rec.index_key(upto)
        if cur.set_range(rec.index_key(lo)):
            while (key := cur.key()) and (end is None or bytes(key) <= end):
                cur.delete()

    def _missing(self, txn: lmdb.Transaction, index: int) -> Exception:
        """The error for log entry ``index`` absent in ``txn`` although the view has it."""
        raw = txn.get(_SNAP, db=self._meta)
        snap = self._decode_snap(raw) if raw is not None else SnapshotMeta()
        if index <= snap.index:
            return Compacted(f"entry {index} compacted (first index {snap.index + 1})")
        cur = txn.cursor(db=self._log)
        last = rec.key_index(cur.key()) if cur.last() else snap.index
        if index > last:
            return Unavailable(f"entry {index} unavailable (last index {last})")
        return Corrupted(f"{self._where()}: database {DB_LOG!r} entry {index} is missing")

    def _decode_snap(self, raw: bytes | memoryview) -> SnapshotMeta:
        return rec.decode_snapshot_meta(DB_META, _SNAP, rec.unseal(DB_META, _SNAP, raw))

    def _load(self) -> _View:
        """Read and check everything; the view of a freshly opened store."""
        with self._env.begin(write=True) as txn:
            raw = txn.get(_FORMAT, db=self._meta)
            if raw is None:
                if txn.stat(self._log)["entries"] or txn.stat(self._meta)["entries"]:
                    raise self._corrupt(f"database {DB_META!r} has no format record")
                self._put_meta(txn, _FORMAT, _FORMAT_TAG)
            elif (tag := self._unseal(_FORMAT, raw)) != _FORMAT_TAG:
                raise StorageError(f"{self._where()}: unknown format {tag!r}")
            snap, hard, conf = SnapshotMeta(), HardState(), ConfState()
            if (raw := txn.get(_SNAP, db=self._meta)) is not None:
                snap = self._decode_snap(raw)
            if (raw := txn.get(_HARD, db=self._meta)) is not None:
                hard = rec.decode_hard_state(DB_META, _HARD, self._unseal(_HARD, raw))
            if (raw := txn.get(_CONF, db=self._meta)) is not None:
                conf = rec.decode_conf_state(DB_META, _CONF, self._unseal(_CONF, raw))
            runs: _Runs = ([], [])
            last = snap.index
            prev_term = snap.term
            for key, value in txn.cursor(db=self._log):
                index = rec.key_index(key)
                if index != last + 1:
                    what = "starts" if last == snap.index else f"jumps from {last}"
                    raise self._corrupt(
                        f"database {DB_LOG!r} entry {index}: log {what} at {index}, "
                        f"expected {last + 1} (snapshot index {snap.index})"
                    )
                term = rec.entry_term(DB_LOG, index, key, value)
                if term < prev_term:
                    raise self._corrupt(
                        f"database {DB_LOG!r} entry {index}: term {term} < {prev_term} before it"
                    )
                if term != prev_term or not runs[0]:
                    runs[0].append(index)
                    runs[1].append(term)
                last, prev_term = index, term
        if hard.commit > last:
            raise self._corrupt(
                f"database {DB_LOG!r}: commit index {hard.commit} beyond last entry {last} "
                "(committed entries lost)"
            )
        return _View(snap, last, hard, conf, tuple(runs[0]), tuple(runs[1]))

    def _unseal(self, key: bytes, raw: bytes | memoryview) -> bytes:
        return rec.unseal(DB_META, key, raw)

    def _corrupt(self, what: str) -> Corrupted:
        return Corrupted(f"{self._where()}: {what}")


class _WriteTxn:
    """One durable LMDB write transaction: commit (with fsync) on success, abort on error;
    LMDB errors become StorageError saying what failed and what to do."""

    def __init__(self, store: LmdbLogStore, what: str) -> None:
        self._store = store
        self._what = what
        self._txn: lmdb.Transaction | None = None

    def __enter__(self) -> lmdb.Transaction:
        try:
            self._txn = self._store._env.begin(write=True)
        except lmdb.Error as exc:
            raise self._error(exc) from exc
        return self._txn

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._txn is not None
        if exc is not None:
            self._txn.abort()
            if isinstance(exc, lmdb.Error):
                raise self._error(exc) from exc
            return
        try:
            self._txn.commit()
        except lmdb.Error as err:
            raise self._error(err) from err

    def _error(self, exc: lmdb.Error) -> StorageError:
        hint = ""
        if isinstance(exc, lmdb.MapFullError):
            hint = " (the LMDB map is full: raise the storage map_size)"
        return StorageError(f"{self._store._where()}: {self._what} failed: {exc}{hint}")


def _lock_dir(path: Path) -> int:
    """Create ``path`` and hold an exclusive lock on path/LOCK (released when the process
    dies), so two processes can never run one node's store at once."""
    lock = path / "LOCK"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(f"raft log store at {path}: cannot create {lock}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StorageError(
            f"raft log store at {path} is in use by another process or store object "
            f"(lock {lock} is held); stop it first"
        ) from exc
    return fd


def _open_env(path: Path, map_size: int) -> lmdb.Environment:
    """Open (creating if needed) the environment and make its directory entry durable."""
    try:
        env = lmdb.open(
            str(path),
            map_size=map_size,
            max_dbs=MAX_DBS,
            subdir=True,
            sync=True,  # fsync on every commit: acknowledged means durable
            metasync=True,  # ... including the meta page (see the module docstring)
            map_async=False,
            writemap=False,  # pages written with pwrite, the map stays read-only
            readahead=False,  # random reads of a data set that may exceed RAM
            max_spare_txns=4,  # reuse read transactions (entries() on the hot path)
            lock=True,  # writers in several threads (log store, state store) serialize
        )
    except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError) as exc:
        raise Corrupted(f"raft log store at {path}: not a valid LMDB environment: {exc}") from exc
    except (lmdb.Error, OSError) as exc:
        raise StorageError(f"raft log store at {path}: cannot open: {exc}") from exc
    try:
        fsync_dir(path)
        fsync_dir(path.parent)
    except OSError as exc:
        env.close()
        raise StorageError(f"raft log store at {path}: cannot sync its directory: {exc}") from exc
    return env


def _conforms(s: LmdbLogStore) -> LogStore:
    return s  # mypy proves LmdbLogStore implements the LogStore protocol
