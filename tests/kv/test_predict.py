"""The state machine's dry run (``KvStateMachine.predict``) against its real apply.

A leader answers proposers from these predictions the moment their entries commit, so a
predicted result must be exactly the result the apply returns later: for every kind of
command, under sessions (retries, stale sequence numbers, expiry by log time), whatever
the batches the apply runs in. A prediction is made only for entries right after the
applied state, and writes nothing."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvraft._pb.kvraft.v1 import kv_pb2 as pb
from kvraft.core.types import ConfChange, ConfChangeType, Entry, EntryType, encode_conf_change

from .conftest import MachineFactory
from .helpers import Log, delete, put
from .test_model import request_st

CI = bool(os.environ.get("CI"))


def key(result: Any) -> bytes:
    return b"" if result is None else bytes(result.SerializeToString(deterministic=True))


@settings(
    max_examples=40 if CI else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            request_st,
            st.sampled_from([0, 1, 2, 3]),  # client (0: no session)
            st.sampled_from(["next", "retry", "stale"]),
            st.sampled_from([0, 1, 30, 200]),  # log time advance (ms); the TTL is 100
            st.booleans(),  # a leader no-op before the command
        ),
        min_size=1,
        max_size=30,
    ),
    windows=st.lists(st.integers(1, 5), min_size=1, max_size=30),
)
def test_predicted_results_are_the_applied_results(
    make_machine: MachineFactory,
    steps: list[tuple[Any, int, str, int, bool]],
    windows: list[int],
) -> None:
    machine = make_machine(session_ttl_ms=100)
    log = Log()
    seqs: dict[int, int] = {}
    entries: list[Entry] = []
    puts: set[int] = set()  # indexes of plain puts: a dry run always covers them
    for request, client, how, advance, noop in steps:
        if noop:
            entries.append(log.entry())
        seq = 0
        if client:
            last = seqs.get(client, 0)
            seq = {"next": last + 1, "retry": max(last, 1), "stale": max(last - 1, 1)}[how]
            seqs[client] = max(last, seq)
        entries.append(log.cmd(request, client=client, seq=seq, time_ms=log.time_ms + advance))
        if isinstance(request, pb.PutRequest):
            puts.add(entries[-1].index)
    at, w = 0, 0
    while at < len(entries):
        window = entries[at : at + windows[w % len(windows)]]
        w += 1
        before = machine.position()
        predicted = machine.predict(window)
        assert machine.position() == before, "the dry run wrote something"
        assert len(predicted) <= len(window)
        if window[0].index in puts:
            assert predicted, "a put right after the applied state was not predicted"
        results = machine.apply(window)
        for i, p in enumerate(predicted):
            assert key(p) == key(results[i]), (window[i].index, p, results[i])
        at += len(window)


def test_a_single_put_and_a_single_key_delete_are_predicted(make_machine: MachineFactory) -> None:
    machine = make_machine()
    log = Log()
    machine.apply([log.cmd(put(b"a", b"1"))])
    window = [log.cmd(put(b"a", b"2", prev_kv=True), client=7, seq=1), log.cmd(delete(b"a"))]
    predicted = machine.predict(window)
    assert len(predicted) == 2
    assert predicted[0].put.header.revision == 2 and predicted[0].put.prev_kv.value == b"1"
    assert predicted[1].delete_range.deleted == 1 and predicted[1].delete_range.header.revision == 3
    assert [key(r) for r in machine.apply(window)] == [key(r) for r in predicted]


def test_nothing_is_predicted_unless_the_state_stands_right_before(
    make_machine: MachineFactory,
) -> None:
    machine = make_machine()
    log = Log()
    first, second = log.cmd(put(b"a")), log.cmd(put(b"b"))
    assert machine.predict([second]) == []  # entry 1 is not applied yet
    machine.apply([first, second])
    assert machine.predict([first]) == [] and machine.predict([second]) == []
    assert machine.predict([]) == []


def test_a_range_scan_or_a_membership_change_ends_the_dry_run(
    make_machine: MachineFactory,
) -> None:
    """Their results need a scan of what the dry run would have to merge, or are the
    runtime's business: the prefix before them is still predicted."""
    machine = make_machine()
    log = Log()
    cc = ConfChange(ConfChangeType.ADD_LEARNER, 4, b"127.0.0.1:1")
    window = [
        log.cmd(put(b"a")),
        log.entry(),  # a leader no-op: predicted as None
        log.cmd(delete(b"a", prefix=True)),
        log.cmd(put(b"b")),
    ]
    predicted = machine.predict(window)
    assert len(predicted) == 2 and predicted[1] is None
    machine.apply(window)
    with_cc = [Entry(1, log.next_index, EntryType.CONF_CHANGE, encode_conf_change(cc))]
    log.next_index += 1
    with_cc.append(log.cmd(put(b"c")))
    assert machine.predict(with_cc) == []
