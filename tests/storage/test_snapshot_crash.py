"""Crash-atomic restore: a child process restoring a snapshot is killed with SIGKILL at
random moments; the store it leaves holds the old state or the new one, never a mix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest

from kvraft.storage.snapshot import restore, write_snapshot
from kvraft.storage.state import LmdbStateStore
from kvraft.storage.state_base import KeyValue, StatePosition

CI = bool(os.environ.get("CI"))
ROUNDS = 4 if CI else 12
KEYS = 10_000 if CI else 40_000

CHILD = """
import sys, lmdb
from pathlib import Path
from kvraft.storage.snapshot import restore
from kvraft.storage.state import LmdbStateStore
env = lmdb.open(sys.argv[1], max_dbs=16, map_size=1 << 31, sync=True)
store = LmdbStateStore(env)
print("start", flush=True)
restore(store, Path(sys.argv[2]))
print("done", flush=True)
"""


def open_env(path: Path) -> lmdb.Environment:
    return lmdb.open(str(path), max_dbs=16, map_size=1 << 31, sync=True)


def make_state(store: LmdbStateStore, tag: bytes, index: int) -> None:
    keys = (KeyValue(b"%s/%06d" % (tag, i), tag * 100, index, index, 1) for i in range(KEYS))
    store.replace(StatePosition(index=index, term=1, revision=index), keys, [])


def classify(path: Path) -> str:
    """'old' or 'new' if the store holds exactly one of the two states, else a diagnosis."""
    env = open_env(path)
    try:
        store = LmdbStateStore(env)
        with store.export() as exp:
            index = exp.position.index
            tags = {kv.key.split(b"/")[0] for kv in exp.key_values()}
            count = sum(1 for _ in exp.key_values())
    finally:
        env.close()
    tag = {10: b"old", 20: b"new"}.get(index)
    if tag is None or tags != {tag} or count != KEYS:
        return f"MIXED index={index} tags={tags} count={count}"
    return tag.decode()


def run_child(db: Path, snap: Path, kill_after: float | None) -> tuple[bool, float]:
    """Run a restoring child; kill it ``kill_after`` s after it starts restoring.
    Returns (finished on its own, seconds it ran)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(snap)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        t0 = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)  # the fault's timing, not a wait for a condition
            proc.send_signal(signal.SIGKILL)
        rc = proc.wait(timeout=120)
        return rc == 0, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.integration
def test_restore_killed_at_random_moments_leaves_old_or_new_state(tmp_path: Path) -> None:
    db = tmp_path / "db"
    src_env = open_env(tmp_path / "src")
    try:
        src = LmdbStateStore(src_env)
        make_state(src, b"old", 10)
        old_snap = write_snapshot(src, tmp_path / "old.snap").path
        make_state(src, b"new", 20)
        new_snap = write_snapshot(src, tmp_path / "new.snap").path
    finally:
        src_env.close()

    def reset_to_old() -> None:
        env = open_env(db)
        try:
            restore(LmdbStateStore(env), old_snap)
        finally:
            env.close()

    reset_to_old()
    finished, duration = run_child(db, new_snap, None)
    assert finished and classify(db) == "new"

    rng = random.Random(int(os.environ.get("KVRAFT_SEED", "7")))
    outcomes: list[str] = []
    for _ in range(ROUNDS):
        reset_to_old()
        run_child(db, new_snap, rng.uniform(0, duration * 1.1))
        outcome = classify(db)
        assert not outcome.startswith("MIXED"), outcome
        outcomes.append(outcome)
    print(f"\nrestore of {KEYS} keys takes {duration:.2f}s; outcomes after kill -9: {outcomes}")
