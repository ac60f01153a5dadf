"""Contract tests of the persistent KV state store (LmdbStateStore over a shared env)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvraft.core.types import ConfState
from kvraft.errors import Corrupted
from kvraft.storage.state import DB_KV, DB_SESSIONS, SHORT_KEY_MAX, LmdbStateStore
from kvraft.storage.state_base import KeyValue, Session, StatePosition

CI = bool(os.environ.get("CI"))


def open_env(path: Path, *, sync: bool = False) -> lmdb.Environment:
    return lmdb.open(str(path), max_dbs=16, map_size=1 << 30, sync=sync)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[lmdb.Environment]:
    e = open_env(tmp_path)
    yield e
    e.close()


@pytest.fixture
def store(env: lmdb.Environment) -> LmdbStateStore:
    return LmdbStateStore(env)


def kv(key: bytes, value: bytes = b"v", rev: int = 2) -> KeyValue:
    return KeyValue(key, value, create_revision=rev, mod_revision=rev, version=1)


def test_empty_store_starts_at_revision_zero_with_nothing_applied(
    store: LmdbStateStore,
) -> None:
    assert store.position() == StatePosition(0, 0, 0, 0, ConfState())
    with store.read() as r:
        assert r.get(b"a") is None
        res = r.range(b"", None)
        assert (res.kvs, res.more, res.count) == ([], False, 0)
        assert r.session(7) is None
        assert r.sessions_seen_before(10**12, 10) == []


def test_write_commits_everything_together_and_survives_reopen(tmp_path: Path) -> None:
    env = open_env(tmp_path, sync=True)
    store = LmdbStateStore(env)
    conf = ConfState(voters=frozenset({1, 2, 3}), removed=frozenset({4}))
    pos = StatePosition(42, 3, 17, 1000, conf)
    with store.write() as w:
        w.put(KeyValue(b"k", b"value", 5, 9, 3))
        w.put_session(Session(11, 4, 1000, b"result"))
        w.set_position(pos)
    env.close()
    store = LmdbStateStore(open_env(tmp_path))
    assert store.position() == pos
    assert store.get(b"k") == KeyValue(b"k", b"value", 5, 9, 3)
    with store.read() as r:
        assert r.session(11) == Session(11, 4, 1000, b"result")


def test_positions_read_back_with_their_own_membership_as_it_changes(
    store: LmdbStateStore, tmp_path: Path,
) -> None:
    """The membership part of the position record is encoded and decoded once per change
    (state.py's _PositionCodec keeps the last of each): every write still reads back
    exactly, in a store and in another one written in turn."""
    a = ConfState(voters=frozenset({1, 2, 3}))
    b = ConfState(voters=frozenset({1, 2, 3}), learners=frozenset({4}))
    other = LmdbStateStore(open_env(tmp_path / "other"))
    for i, conf in enumerate([a, a, b, b, a, ConfState(), b], start=1):
        with store.write() as w:
            w.set_position(StatePosition(i, 1, i, 10 * i, conf))
        with other.write() as w:
            w.set_position(StatePosition(i, 2, 0, 0, a if conf != a else b))
        assert store.position() == StatePosition(i, 1, i, 10 * i, conf)
        assert other.position().conf_state == (a if conf != a else b)


def test_a_write_block_that_raises_changes_nothing(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put(kv(b"a", b"old"))
        w.set_position(StatePosition(1, 1, 2))
    with pytest.raises(RuntimeError), store.write() as w:
        w.put(kv(b"a", b"new"))
        w.put(kv(b"b"))
        w.set_position(StatePosition(2, 1, 3))
        assert w.get(b"a") == kv(b"a", b"new")  # a write view reads its own writes
        raise RuntimeError("apply failed half way")
    assert store.get(b"a") == kv(b"a", b"old")
    assert store.get(b"b") is None
    assert store.position().index == 1


def test_read_view_is_a_consistent_snapshot_while_writes_go_on(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put(kv(b"a", b"1"))
    with store.read() as r:
        with store.write() as w:
            w.put(kv(b"a", b"2"))
            w.put(kv(b"b", b"2"))
        assert r.get(b"a") == kv(b"a", b"1")
        assert r.range(b"", None).count == 1
    assert store.get(b"a") == kv(b"a", b"2")


def test_delete_reports_whether_the_key_existed(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put(kv(b"a"))
        assert w.delete(b"a") is True
        assert w.delete(b"a") is False
        assert w.get(b"a") is None


def test_range_limit_more_and_count(store: LmdbStateStore) -> None:
    with store.write() as w:
        for i in range(10):
            w.put(kv(b"k%02d" % i))
        w.put(kv(b"other"))
    with store.read() as r:
        res = r.range(b"k", b"l", limit=3)
        assert [x.key for x in res.kvs] == [b"k00", b"k01", b"k02"]
        assert res.more and res.count == 10
        res = r.range(b"k03", b"k05")
        assert [x.key for x in res.kvs] == [b"k03", b"k04"] and not res.more
        res = r.range(b"k", b"l", limit=3, count=False)
        assert len(res.kvs) == 3 and res.more
        res = r.range(b"k08", None)
        assert [x.key for x in res.kvs] == [b"k08", b"k09", b"other"]
        assert r.range(b"k05", b"k05").count == 0


def test_long_keys_round_trip_and_scan_in_byte_order(store: LmdbStateStore) -> None:
    base = b"p" * SHORT_KEY_MAX
    keys = [
        base,
        base + b"\x00",
        base + b"\x00\x00",
        base + b"a" * 3000,
        base + b"b",
        base[:-1] + b"q",
        base[:-1] + b"o" + b"z" * 1000,
        b"x" * 4096,
        b"a",
    ]
    with store.write() as w:
        for i, k in enumerate(keys):
            w.put(kv(k, b"%d" % i))
    for i, k in enumerate(keys):
        assert store.get(k) == kv(k, b"%d" % i)
    assert store.get(base + b"c") is None
    with store.read() as r:
        assert [x.key for x in r.range(b"", None).kvs] == sorted(keys)
        got = [x.key for x in r.range(base + b"\x00", base + b"b").kvs]
        assert got == [k for k in sorted(keys) if base + b"\x00" <= k < base + b"b"]
        assert [x.key for x in r.range(b"", None, limit=4).kvs] == sorted(keys)[:4]
    with store.write() as w:
        assert w.delete(base + b"a" * 3000)
    assert store.get(base + b"a" * 3000) is None


KEYS = st.builds(
    lambda prefix, tail: prefix + tail,
    st.sampled_from([b"", b"a", b"ab", b"q" * (SHORT_KEY_MAX - 1), b"q" * SHORT_KEY_MAX]),
    st.binary(min_size=0, max_size=4),
).filter(bool)


@settings(
    max_examples=30 if CI else 200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ops=st.lists(st.tuples(st.booleans(), KEYS), min_size=1, max_size=40),
    start=KEYS | st.just(b""),
    end=st.none() | KEYS,
    limit=st.integers(0, 5),
)
def test_range_matches_a_sorted_dict_model(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[bool, bytes]],
    start: bytes,
    end: bytes | None,
    limit: int,
) -> None:
    env = open_env(tmp_path_factory.mktemp("model"))
    try:
        store = LmdbStateStore(env)
        model: dict[bytes, KeyValue] = {}
        with store.write() as w:
            for n, (is_put, key) in enumerate(ops):
                if is_put:
                    model[key] = kv(key, b"%d" % n, rev=n + 2)
                    w.put(model[key])
                else:
                    assert w.delete(key) == (model.pop(key, None) is not None)
        expect = [model[k] for k in sorted(model) if k >= start and (end is None or k < end)]
        with store.read() as r:
            res = r.range(start, end, limit=limit)
            assert res.kvs == (expect[:limit] if limit else expect)
            assert res.count == len(expect)
            assert res.more == (len(res.kvs) < len(expect))
            for k, v in model.items():
                assert r.get(k) == v
    finally:
        env.close()


def test_sessions_are_indexed_by_last_seen_time(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put_session(Session(1, 1, 300, b"r1"))
        w.put_session(Session(2, 1, 100, b"r2"))
        w.put_session(Session(3, 1, 200, b"r3"))
        assert w.sessions_seen_before(250, 10) == [2, 3]
        assert w.sessions_seen_before(1000, 2) == [2, 3]
        w.put_session(Session(2, 2, 400, b"r2b"))  # seen again: moves to the back
        assert w.sessions_seen_before(1000, 10) == [3, 1, 2]
        assert w.delete_session(3) is True
        assert w.delete_session(3) is False
    with store.read() as r:
        assert r.sessions_seen_before(1000, 10) == [1, 2]
        assert r.session(2) == Session(2, 2, 400, b"r2b")


def test_replace_swaps_the_whole_state(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put(kv(b"old"))
        w.put_session(Session(9, 1, 5, b"x"))
        w.set_position(StatePosition(5, 1, 6))
    new_pos = StatePosition(100, 4, 50, 77, ConfState(voters=frozenset({1})))
    store.replace(new_pos, [kv(b"a"), kv(b"b")], [Session(1, 3, 70, b"y")])
    assert store.position() == new_pos
    with store.read() as r:
        assert [x.key for x in r.range(b"", None).kvs] == [b"a", b"b"]
        assert r.session(9) is None and r.session(1) == Session(1, 3, 70, b"y")
        assert r.sessions_seen_before(10**9, 10) == [1]
    with store.export() as exp:
        assert exp.position == new_pos
        assert list(exp.key_values()) == [kv(b"a"), kv(b"b")]
        assert list(exp.sessions()) == [Session(1, 3, 70, b"y")]


def test_replace_that_fails_half_way_leaves_the_old_state(store: LmdbStateStore) -> None:
    with store.write() as w:
        w.put(kv(b"old"))
        w.set_position(StatePosition(5, 1, 6))

    def broken() -> Iterator[KeyValue]:
        yield kv(b"a")
        raise ValueError("stream broke")

    with pytest.raises(ValueError, match="stream broke"):
        store.replace(StatePosition(9, 2, 9), broken(), [])
    assert store.position().index == 5
    assert store.get(b"old") is not None and store.get(b"a") is None


def _tamper(env: lmdb.Environment, db_name: bytes, key: bytes) -> None:
    db = env.open_db(db_name)
    with env.begin(write=True) as txn:
        raw = bytearray(txn.get(key, db=db))
        raw[-1] ^= 0x01
        txn.put(key, bytes(raw), db=db)


def test_damaged_records_raise_corrupted_naming_db_and_key(
    env: lmdb.Environment, store: LmdbStateStore
) -> None:
    with store.write() as w:
        w.put(kv(b"good"))
        w.put(kv(b"bad", b"some value"))
        w.put_session(Session(5, 1, 1, b"res"))
    _tamper(env, DB_KV, b"bad")
    _tamper(env, DB_SESSIONS, (5).to_bytes(8, "big"))
    assert store.get(b"good") is not None
    with pytest.raises(Corrupted, match=r"b'bad'.*'state_kv'.*checksum"):
        store.get(b"bad")
    with store.read() as r:
        with pytest.raises(Corrupted, match="state_kv"):
            r.range(b"", None)
        with pytest.raises(Corrupted, match="state_sessions"):
            r.session(5)


def test_a_flipped_bit_on_disk_is_detected(tmp_path: Path) -> None:
    env = open_env(tmp_path, sync=True)
    store = LmdbStateStore(env)
    marker = b"MARKER-" + b"z" * 64
    with store.write() as w:
        w.put(kv(b"victim", marker))
    env.close()
    data = tmp_path / "data.mdb"
    blob = bytearray(data.read_bytes())
    at = blob.find(marker)
    assert at >= 0
    blob[at + 10] ^= 0x20
    data.write_bytes(bytes(blob))
    env = open_env(tmp_path)
    try:
        with pytest.raises(Corrupted, match="victim"):
            LmdbStateStore(env).get(b"victim")
    finally:
        env.close()
