"""Member addresses are replicated state: applied CONF_CHANGE entries keep the address
record in the same transaction as the applied index, and snapshots carry it."""

from __future__ import annotations

from pathlib import Path

from kvraft.core.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    encode_conf_change,
)
from kvraft.kv.machine import KvStateMachine

from .conftest import MachineFactory
from .helpers import Log, put

ADD_VOTER, ADD_LEARNER, REMOVE = (
    ConfChangeType.ADD_VOTER, ConfChangeType.ADD_LEARNER, ConfChangeType.REMOVE_NODE
)


def conf(log: Log, kind: ConfChangeType, node: int, address: str = "") -> Entry:
    e = log.entry(encode_conf_change(ConfChange(kind, node, address.encode())))
    return Entry(term=e.term, index=e.index, type=EntryType.CONF_CHANGE, data=e.data)


def addr(n: int) -> str:
    return f"127.0.0.1:{7000 + n}"


def test_conf_changes_keep_the_address_record(machine: KvStateMachine) -> None:
    log = Log()
    assert machine.members() is None  # nothing applied: no record
    machine.apply([conf(log, ADD_VOTER, n, addr(n)) for n in (1, 2, 3)])
    assert machine.members() == {1: addr(1), 2: addr(2), 3: addr(3)}
    assert machine.applied() == (3, 1)
    machine.apply([
        log.cmd(put(b"k")),
        conf(log, ADD_LEARNER, 4, addr(4)),
        conf(log, ADD_VOTER, 4),  # a promotion without an address keeps the known one
        conf(log, REMOVE, 2),
    ])
    assert machine.members() == {1: addr(1), 3: addr(3), 4: addr(4)}
    cs = ConfState(voters=frozenset({1, 3}), removed=frozenset({2}))
    machine.apply([log.cmd(put(b"k2"))], cs)
    machine.apply([conf(log, ADD_VOTER, 2, "127.0.0.1:9")])  # a removed id never comes back
    assert machine.members() == {1: addr(1), 3: addr(3), 4: addr(4)}


def test_addresses_survive_restart_snapshot_and_restore(
    make_machine: MachineFactory, tmp_path: Path
) -> None:
    src = make_machine(tmp_path)
    log = Log()
    want = {1: addr(1), 2: addr(2), 5: addr(5)}
    src.apply([conf(log, ADD_VOTER, n, want[n]) for n in sorted(want)])
    src = make_machine(tmp_path)  # restart
    assert src.members() == want
    src.apply([log.cmd(put(b"k"))], ConfState(voters=frozenset(want)))
    info = src.write_snapshot()
    assert info.members == want
    dst = make_machine()
    dst.apply([conf(Log(), ADD_VOTER, 9, addr(9))])  # replaced by the snapshot's record
    dst.restore_snapshot(info.path, info.meta)
    assert dst.members() == want
    assert dst.applied() == src.applied()
    # the restored node goes on applying: a later removal is recorded as well
    dst.apply([conf(log, REMOVE, 5)])
    assert dst.members() == {1: addr(1), 2: addr(2)}


def test_seed_members_only_fills_a_missing_record(make_machine: MachineFactory) -> None:
    m = make_machine()
    assert m.seed_members({1: addr(1), 0: "x", 2: ""}) is True
    assert m.members() == {1: addr(1)}
    assert m.seed_members({3: addr(3)}) is False
    assert m.members() == {1: addr(1)}
