"""The KV state machine: etcd revision semantics, no-ops, exactly-once sessions, expiry,
restart, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.core.types import ConfState, Entry, EntryType
from kvraft.errors import SnapshotError
from kvraft.kv.command import ABORTED, INVALID_ARGUMENT
from kvraft.kv.machine import KvStateMachine

from .conftest import MachineFactory
from .helpers import Log, cmp, delete, kv_tuple, put, txn


def get(m: KvStateMachine, key: bytes) -> tuple[bytes, bytes, int, int, int] | None:
    resp = m.range(pb.RangeRequest(key=key))
    return kv_tuple(resp.kvs[0]) if resp.kvs else None


def revision(m: KvStateMachine) -> int:
    return m.position().revision


def test_revisions_versions_and_recreation_follow_etcd(machine: KvStateMachine) -> None:
    log = Log()
    r = machine.apply([log.cmd(put(b"a", b"1")), log.cmd(put(b"a", b"2")), log.cmd(put(b"b"))])
    assert [x.put.header.revision for x in r] == [1, 2, 3]
    assert get(machine, b"a") == (b"a", b"2", 1, 2, 2)
    assert get(machine, b"b") == (b"b", b"v", 3, 3, 1)
    [d] = machine.apply([log.cmd(delete(b"a", prev_kv=True))])
    assert d.delete_range.deleted == 1 and d.delete_range.header.revision == 4
    assert kv_tuple(d.delete_range.prev_kvs[0]) == (b"a", b"2", 1, 2, 2)
    assert get(machine, b"a") is None
    [p] = machine.apply([log.cmd(put(b"a", b"3", prev_kv=True))])
    assert not p.put.HasField("prev_kv")  # it did not exist
    assert get(machine, b"a") == (b"a", b"3", 5, 5, 1)  # created anew, version reset
    [p] = machine.apply([log.cmd(put(b"a", b"4", prev_kv=True))])
    assert kv_tuple(p.put.prev_kv) == (b"a", b"3", 5, 5, 1)
    assert machine.range(pb.RangeRequest(key=b"a")).header.revision == 6


def test_delete_of_nothing_does_not_bump_the_revision(machine: KvStateMachine) -> None:
    log = Log()
    machine.apply([log.cmd(put(b"x"))])
    [d] = machine.apply([log.cmd(delete(b"nope")), log.cmd(delete(b"q", prefix=True))])[:1]
    assert d.delete_range.deleted == 0 and d.delete_range.header.revision == 1
    assert revision(machine) == 1


def test_delete_range_by_prefix_and_by_range(machine: KvStateMachine) -> None:
    log = Log()
    machine.apply([log.cmd(put(k)) for k in (b"p/1", b"p/2", b"p/3", b"q", b"r")])
    [d] = machine.apply([log.cmd(delete(b"p/", prefix=True))])
    assert d.delete_range.deleted == 3 and revision(machine) == 6
    [d] = machine.apply([log.cmd(delete(b"a", b"r"))])  # [a, r): only q
    assert d.delete_range.deleted == 1
    assert [kv.key for kv in machine.range(pb.RangeRequest(key=b"\0", range_end=b"\0")).kvs] == [
        b"r"
    ]


def test_txn_compares_branches_and_revision(machine: KvStateMachine) -> None:
    log = Log()
    machine.apply([log.cmd(put(b"k", b"v1"))])  # rev 1
    t = txn(
        [
            cmp(b"k", "VALUE", "EQUAL", b"v1"),
            cmp(b"k", "VERSION", "EQUAL", 1),
            cmp(b"k", "CREATE", "LESS", 2),
            cmp(b"k", "MOD", "GREATER", 0),
            cmp(b"missing", "VERSION", "EQUAL", 0),
            cmp(b"missing", "VALUE", "EQUAL", b""),
        ],
        success=[put(b"k", b"v2"), put(b"j", b"new"), pb.RangeRequest(key=b"j")],
        failure=[put(b"k", b"failed")],
    )
    [r] = machine.apply([log.cmd(t)])
    assert r.txn.succeeded and r.txn.header.revision == 2
    assert kv_tuple(r.txn.responses[2].range.kvs[0]) == (b"j", b"new", 2, 2, 1)  # sees the put
    assert get(machine, b"k") == (b"k", b"v2", 1, 2, 2)
    assert get(machine, b"j") == (b"j", b"new", 2, 2, 1)

    failing = txn(
        [cmp(b"k", "VALUE", "NOT_EQUAL", b"v2")], [put(b"k", b"x")], [pb.RangeRequest(key=b"k")]
    )
    [r] = machine.apply([log.cmd(failing)])
    assert not r.txn.succeeded and r.txn.header.revision == 2  # read-only branch: no bump
    assert kv_tuple(r.txn.responses[0].range.kvs[0]) == (b"k", b"v2", 1, 2, 2)

    writing_failure = txn([cmp(b"k", "VERSION", "GREATER", 5)], [], [put(b"k", b"else")])
    [r] = machine.apply([log.cmd(writing_failure)])
    assert not r.txn.succeeded and r.txn.header.revision == 3
    assert get(machine, b"k") == (b"k", b"else", 1, 3, 3)


def test_noops_and_conf_changes_advance_the_applied_position(machine: KvStateMachine) -> None:
    cs = ConfState(voters=frozenset({1, 2, 3}))
    entries = [
        Entry(term=2, index=1),
        Entry(term=2, index=2, type=EntryType.CONF_CHANGE, data=b'{"x":1}'),
    ]
    assert machine.apply(entries, cs) == [None, None]
    pos = machine.position()
    assert (pos.index, pos.term, pos.revision, pos.conf_state) == (2, 2, 0, cs)
    machine.apply([Entry(term=3, index=3)])
    assert machine.applied() == (3, 3) and machine.position().conf_state == cs


def test_entries_must_follow_the_applied_index(machine: KvStateMachine) -> None:
    machine.apply([Entry(term=1, index=1)])
    with pytest.raises(AssertionError, match="entry 3 after applied 1"):
        machine.apply([Entry(term=1, index=3)])
    assert machine.applied() == (1, 1)


def test_restart_resumes_from_the_applied_index(
    make_machine: MachineFactory, tmp_path: Path
) -> None:
    m = make_machine(tmp_path)
    log = Log()
    m.apply([log.cmd(put(b"a")), log.entry(), log.cmd(put(b"b"))])
    again = make_machine(tmp_path)
    assert again.applied() == (3, 1) and again.position().revision == 2
    [r] = again.apply([log.cmd(put(b"a"))])
    assert r.put.header.revision == 3 and get(again, b"a") == (b"a", b"v", 1, 3, 2)


def test_bad_commands_get_invalid_argument_and_change_nothing(machine: KvStateMachine) -> None:
    log = Log()
    machine.apply([log.cmd(put(b"a"))])
    bad_txn = txn([], [put(b"z"), put(b"")])  # second op has an empty key
    results = machine.apply([log.entry(b"\xff\xfe garbage"), log.cmd(put(b"")), log.cmd(bad_txn)])
    for r in results:
        assert r.WhichOneof("result") == "error" and r.error.code == INVALID_ARGUMENT
    assert "malformed command" in results[0].error.message
    assert "key must not be empty" in results[1].error.message
    assert get(machine, b"z") is None and revision(machine) == 1
    assert machine.applied() == (4, 1)


def test_a_retried_command_is_applied_once(machine: KvStateMachine) -> None:
    log = Log()
    [first] = machine.apply([log.cmd(put(b"n", b"1"), client=7, seq=1)])
    # the same (client, seq) again - even with other content - returns the stored result
    [again] = machine.apply([log.cmd(put(b"n", b"2"), client=7, seq=1)])
    assert again == first
    assert get(machine, b"n") == (b"n", b"1", 1, 1, 1) and revision(machine) == 1
    [second] = machine.apply([log.cmd(put(b"n", b"2"), client=7, seq=2)])
    assert second.put.header.revision == 2
    [stale] = machine.apply([log.cmd(put(b"n", b"old"), client=7, seq=1)])
    assert stale.error.code == ABORTED and "stale sequence number 1" in stale.error.message
    assert get(machine, b"n") == (b"n", b"2", 1, 2, 2)
    # other clients and session-less writes are independent
    [other] = machine.apply([log.cmd(put(b"n", b"3"), client=8, seq=1)])
    [anon] = machine.apply([log.cmd(put(b"n", b"4")), log.cmd(put(b"n", b"4"))])[:1]
    assert other.put.header.revision == 3 and anon.put.header.revision == 4
    assert revision(machine) == 5


def test_sessions_expire_by_log_time_only(make_machine: MachineFactory) -> None:
    m = make_machine(session_ttl_ms=10_000)
    log = Log()
    m.apply([log.cmd(put(b"k"), client=1, seq=5, time_ms=100_000)])
    # another client's command 9.999 s later (log time): client 1 is still remembered
    m.apply([log.cmd(put(b"other"), client=2, seq=1, time_ms=109_999)])
    [dup] = m.apply([log.cmd(put(b"k"), client=1, seq=5, time_ms=109_999)])
    assert dup.put.header.revision == 1
    # 10 s after client 1's last command its session is gone: the retry applies anew
    m.apply([log.cmd(put(b"other"), client=2, seq=2, time_ms=110_001)])
    [fresh] = m.apply([log.cmd(put(b"k"), client=1, seq=5, time_ms=110_001)])
    assert fresh.put.header.revision == 4
    # a leader with a clock behind does not move log time backwards
    m.apply([log.cmd(put(b"x"), client=3, seq=1, time_ms=50)])
    assert m.position().log_time_ms == 110_001


def test_results_do_not_depend_on_batching(make_machine: MachineFactory) -> None:
    log = Log()
    entries = [
        log.cmd(
            put(b"k%d" % (i % 5), b"%d" % i), client=i % 3 + 1, seq=i // 3 + 1, time_ms=1000 * i
        )
        for i in range(30)
    ]
    entries.insert(7, log.entry())
    entries = [Entry(term=1, index=i + 1, data=e.data) for i, e in enumerate(entries)]
    a, b = make_machine(session_ttl_ms=5000), make_machine(session_ttl_ms=5000)
    ra = a.apply(entries)
    rb: list[object] = []
    for lo, hi in [(0, 1), (1, 9), (9, 10), (10, 31)]:
        rb.extend(b.apply(entries[lo:hi]))
    assert ra == rb
    with a._store.export() as ea, b._store.export() as eb:  # noqa: SLF001
        assert ea.position == eb.position
        assert list(ea.key_values()) == list(eb.key_values())
        assert list(ea.sessions()) == list(eb.sessions())


def test_snapshot_and_restore_through_the_machine(make_machine: MachineFactory) -> None:
    src, dst = make_machine(), make_machine()
    log = Log()
    src.apply(
        [log.cmd(put(b"key%03d" % i, b"x" * i), client=1, seq=i + 1) for i in range(100)],
        ConfState(voters=frozenset({1})),
    )
    info = src.write_snapshot()
    assert info.meta.index == 100 and info.keys == 100 and info.sessions == 1
    latest = src.latest_snapshot()
    assert latest is not None and latest.path == info.path
    with pytest.raises(SnapshotError, match="expected index 99"):
        dst.restore_snapshot(info.path, info.meta.__class__(index=99, term=1))
    restored = dst.restore_snapshot(info.path, info.meta)
    assert restored.meta == info.meta and dst.position() == src.position()
    req = pb.RangeRequest(key=b"key", prefix=True, limit=10)
    assert dst.range(req) == src.range(req)
    # the restored session still deduplicates
    [dup] = dst.apply([Log(start=101).cmd(put(b"key099", b"again"), client=1, seq=100)])
    assert dup.put.header.revision == 100


def test_range_forms(machine: KvStateMachine) -> None:
    log = Log()
    machine.apply([log.cmd(put(k, b"val")) for k in (b"a", b"b/1", b"b/2", b"b/3", b"c")])
    keys = lambda resp: [kv.key for kv in resp.kvs]  # noqa: E731
    assert keys(machine.range(pb.RangeRequest(key=b"b/2"))) == [b"b/2"]
    assert keys(machine.range(pb.RangeRequest(key=b"b/", prefix=True))) == [b"b/1", b"b/2", b"b/3"]
    assert keys(machine.range(pb.RangeRequest(key=b"b", range_end=b"c"))) == [
        b"b/1",
        b"b/2",
        b"b/3",
    ]
    assert keys(machine.range(pb.RangeRequest(key=b"b/3", range_end=b"\0"))) == [b"b/3", b"c"]
    r = machine.range(pb.RangeRequest(key=b"a", range_end=b"\0", limit=2, keys_only=True))
    assert keys(r) == [b"a", b"b/1"] and r.more and r.count == 5 and r.kvs[0].value == b""
    r = machine.range(pb.RangeRequest(key=b"b/", prefix=True, count_only=True))
    assert r.count == 3 and not r.kvs
    assert machine.range(pb.RangeRequest(key=b"zz")).count == 0
    assert machine.range(pb.RangeRequest(key=b"a")).header.revision == 5
