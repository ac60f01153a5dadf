"""Crash tests: a child process writes batches to an LmdbLogStore and announces each one;
the parent kill -9s it at a random moment, reopens the store and checks that every
batch the child reported durable is there, that the batch in flight is either wholly
there or wholly absent, that the log is contiguous and that the hard state agrees with it.
Then a new child carries on from the recovered store, and so on for many rounds.

Profiles: CI=true runs a few rounds; KVRAFT_DEEP=1 runs many.
"""

from __future__ import annotations

import copy
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kvraft.core.types import HardState
from kvraft.storage.lmdb_log import LmdbLogStore
from tests.storage.conftest import CI, DEEP
from tests.storage.crash_child import entry_data

ROUNDS = 200 if DEEP else (8 if CI else 25)
TIME_BUDGET = 300.0 if DEEP else (30.0 if CI else 60.0)
LINE_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Model:
    """The store as the child announced it."""

    snap: tuple[int, int] = (0, 0)  # (index, term) of the latest compaction
    terms: dict[int, int] = field(default_factory=dict)  # index -> term of each entry
    hard: HardState = field(default_factory=HardState)

    def apply(self, words: list[str]) -> None:
        if words[0] == "save":
            start, n, term, vote, commit = map(int, words[1:])
            if n:
                self.terms = {i: t for i, t in self.terms.items() if i < start}
                self.terms.update({i: term for i in range(start, start + n)})
            self.hard = HardState(term, vote, commit)
        else:
            index, term = int(words[1]), int(words[2])
            self.snap = (index, term)
            self.terms = {i: t for i, t in self.terms.items() if i > index}


def observe(path: Path) -> tuple[tuple[int, int], dict[int, int], HardState]:
    """Open the store as a restarted node would and read everything back."""
    s = LmdbLogStore(path, map_size=1 << 30)
    try:
        meta = s.snapshot_meta()
        first, last = s.first_index(), s.last_index()
        assert first == meta.index + 1
        ents = s.entries(first, last + 1)
        assert [e.index for e in ents] == list(range(first, last + 1)), "log not contiguous"
        for e in ents:
            assert e.data == entry_data(e.index, e.term), f"entry {e.index} has wrong data"
            assert s.term(e.index) == e.term
        hs, _ = s.initial_state()
        assert hs.commit <= last, f"commit {hs.commit} beyond last index {last}"
        assert not ents or ents[-1].term <= hs.term, "entry term beyond the hard state term"
        return (meta.index, meta.term), {e.index: e.term for e in ents}, hs
    finally:
        s.close()


class Child:
    """A crash_child process and the lines it printed (read unbuffered, with a timeout)."""

    def __init__(self, path: Path, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.storage.crash_child", str(path), str(seed), "100000"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.buf = b""  # bytes read from the child's stdout, not yet returned as lines

    def line(self) -> list[str]:
        """The next line the child prints; fails the test if it dies or stays silent."""
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], LINE_TIMEOUT)
            chunk = os.read(self.fd, 1 << 16) if ready else b""
            if not chunk:
                self.kill_and_drain()
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"crash child died or went silent: {err[-2000:]}")
            self.buf += chunk
        text, self.buf = self.buf.split(b"\n", 1)
        return text.decode().split()

    def kill_and_drain(self) -> list[list[str]]:
        """SIGKILL the child; every complete line it printed that line() did not return."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdout is not None
        rest = self.buf + self.proc.stdout.read()
        self.buf = b""
        self.proc.stdout.close()
        return [line.decode().split() for line in rest.split(b"\n")[:-1]]

    def close(self) -> None:
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.mark.integration
def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("KVRAFT_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    path = tmp_path / "db"
    model = Model()
    deadline = time.monotonic() + TIME_BUDGET
    landed = lost = rounds = 0
    while rounds < ROUNDS and time.monotonic() < deadline:
        rounds += 1
        where = f"seed {seed} round {rounds}"
        child = Child(path, rng.randrange(1 << 30))
        words = child.line()
        assert words[0] == "open", words
        first, last, term, vote, commit = map(int, words[1:])
        assert (first, last) == (model.snap[0] + 1, max(model.terms, default=model.snap[0]))
        assert HardState(term, vote, commit) == model.hard, where
        # let it run for a random number of lines, then kill it wherever it is
        n = rng.choice([0, 1, 2, rng.randint(3, 30), rng.randint(30, 400)])
        lines = [child.line() for _ in range(n)]
        lines += child.kill_and_drain()
        child.close()
        pending: list[str] | None = None
        for words in lines:
            if words == ["ok"]:
                assert pending is not None
                model.apply(pending)
                pending = None
            else:
                pending = words
        got = observe(path)
        if pending is not None and got != (model.snap, model.terms, model.hard):
            after = copy.deepcopy(model)
            after.apply(pending)
            model = after
            landed += 1
        else:
            lost += pending is not None
        assert got == (model.snap, model.terms, model.hard), (
            f"{where}: the store is neither the acknowledged state nor that plus the write "
            f"in flight ({pending})"
        )
    assert rounds >= min(ROUNDS, 3)
    print(
        f"seed {seed}: {rounds} rounds; writes in flight at the kill: {landed} landed, {lost} lost"
    )
