"""Hypothesis: random sequences of append / overwrite / hard state / compact / snapshot
install / reopen, checked after every step against a plain model of a Raft log."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvraft.core.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from kvraft.errors import Compacted, Unavailable
from kvraft.storage.base import LogStore
from tests.storage.conftest import CI, DEEP, KITS, Kit, reopen

EXAMPLES = 300 if DEEP else (25 if CI else 60)


@dataclass
class Model:
    """The obvious log: a dict from index to entry, plus the snapshot and hard state."""

    snap: SnapshotMeta = field(default_factory=SnapshotMeta)
    log: dict[int, Entry] = field(default_factory=dict)
    hard: HardState = field(default_factory=HardState)
    conf: ConfState = field(default_factory=ConfState)

    @property
    def first(self) -> int:
        return self.snap.index + 1

    @property
    def last(self) -> int:
        return max(self.log, default=self.snap.index)

    def term(self, i: int) -> int:
        return self.snap.term if i == self.snap.index else self.log[i].term


def check_same(s: LogStore, m: Model) -> None:
    assert s.initial_state() == (m.hard, m.conf)
    assert s.snapshot_meta() == m.snap
    assert (s.first_index(), s.last_index()) == (m.first, m.last)
    assert s.entries(m.first, m.last + 1) == [m.log[i] for i in range(m.first, m.last + 1)]
    assert [s.term(i) for i in range(m.first - 1, m.last + 1)] == [
        m.term(i) for i in range(m.first - 1, m.last + 1)
    ]
    if m.snap.index > 0:
        with pytest.raises(Compacted):
            s.term(m.snap.index - 1)
    with pytest.raises(Unavailable):
        s.term(m.last + 1)


def step_append(d: st.DataObject, s: LogStore, m: Model) -> None:
    # valid: start after the commit (or the snapshot), at most right after the last entry
    lo = max(m.first, m.hard.commit + 1)
    start = d.draw(st.integers(lo, m.last + 1), label="start")
    n = d.draw(st.integers(1, 6), label="n")
    term = max(m.term(start - 1), m.hard.term) + d.draw(st.integers(0, 1), label="bump")
    batch = [
        Entry(term, i, d.draw(st.sampled_from(EntryType)), d.draw(st.binary(max_size=40)))
        for i in range(start, start + n)
    ]
    hs = None
    if d.draw(st.booleans(), label="with hard state"):
        new_last = start + n - 1
        commit = d.draw(st.integers(m.hard.commit, new_last), label="commit")
        hs = HardState(term=term, vote=m.hard.vote if term == m.hard.term else 0, commit=commit)
    s.save(entries=batch, hard_state=hs)
    for i in range(start, m.last + 1):
        del m.log[i]
    m.log.update({e.index: e for e in batch})
    if hs is not None:
        m.hard = hs


def step_bad_append(d: st.DataObject, s: LogStore, m: Model) -> None:
    start = d.draw(st.sampled_from([m.first - 1, m.last + 2]), label="bad start")
    if start < 1:
        return
    with pytest.raises(Compacted if start < m.first else Unavailable):
        s.save(entries=[Entry(m.hard.term + 1, start)])


def step_hard_state(d: st.DataObject, s: LogStore, m: Model) -> None:
    term = m.hard.term + d.draw(st.integers(0, 2), label="term bump")
    vote = m.hard.vote if term == m.hard.term and m.hard.vote else d.draw(st.integers(0, 3))
    commit = d.draw(st.integers(m.hard.commit, m.last), label="commit")
    m.hard = HardState(term, vote, commit)
    s.save(hard_state=m.hard)


def step_compact(d: st.DataObject, s: LogStore, m: Model) -> None:
    if m.last < m.first:
        return
    idx = d.draw(st.integers(m.first, m.last), label="compact to")
    meta = SnapshotMeta(idx, m.term(idx), ConfState(voters=frozenset({idx % 5 + 1})))
    s.compact(meta)
    m.snap = meta
    m.log = {i: e for i, e in m.log.items() if i > idx}


def step_install(d: st.DataObject, s: LogStore, m: Model) -> None:
    idx = d.draw(st.integers(max(m.first, m.hard.commit + 1), m.last + 5), label="snap index")
    matching = idx <= m.last and d.draw(st.booleans(), label="matching")
    term = m.term(idx) if matching else max(m.hard.term, m.term(m.last)) + 1
    meta = SnapshotMeta(idx, term, ConfState(voters=frozenset({1, 2}), learners=frozenset({idx})))
    hs = HardState(max(term, m.hard.term), 0 if term > m.hard.term else m.hard.vote, idx)
    s.save(snapshot=meta, hard_state=hs)
    m.log = {i: e for i, e in m.log.items() if i > idx} if matching else {}
    m.snap, m.hard, m.conf = meta, hs, meta.conf_state


def step_conf(d: st.DataObject, s: LogStore, m: Model) -> None:
    m.conf = ConfState(voters=frozenset(d.draw(st.sets(st.integers(1, 5), max_size=3))))
    s.save_conf_state(m.conf)


STEPS = [step_append, step_append, step_bad_append, step_hard_state, step_compact]
STEPS += [step_install, step_conf]


def run(kit: Kit, d: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db"
        s, m = kit.open(path), Model()
        try:
            for _ in range(d.draw(st.integers(1, 30), label="steps")):
                if kit.durable and d.draw(st.integers(0, 9), label="reopen?") == 0:
                    s = reopen(kit, s, path)
                else:
                    d.draw(st.sampled_from(STEPS), label="step")(d, s, m)
                check_same(s, m)
        finally:
            s.close()


@pytest.mark.parametrize("kit_name", sorted(KITS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(d=st.data())
def test_store_matches_model(kit_name: str, d: st.DataObject) -> None:
    run(KITS[kit_name](), d)
