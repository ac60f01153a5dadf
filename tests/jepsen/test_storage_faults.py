"""Storage faults damage exactly the tail of a stopped node's LMDB data file."""

from __future__ import annotations

import random
from pathlib import Path

import lmdb
import pytest
from jepsen_like.nemesis.storage import NoDataFile, damage, data_file


def make_env(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 22, subdir=True)
    with env.begin(write=True) as txn:
        for i in range(2000):
            txn.put(f"k{i:05d}".encode(), b"v" * 100)
    env.close()
    return path / "data.mdb"


def test_finds_the_data_file_not_the_lock_file(tmp_path: Path) -> None:
    db = make_env(tmp_path / "node" / "raft")
    assert data_file(tmp_path / "node") == db
    with pytest.raises(NoDataFile):
        data_file(tmp_path / "empty")


def test_truncate_cuts_the_tail(tmp_path: Path) -> None:
    db = make_env(tmp_path)
    before = db.read_bytes()
    d = damage(tmp_path, "truncate", random.Random(0), nbytes=4096)
    after = db.read_bytes()
    assert (d.size_before, d.size_after) == (len(before), len(before) - 4096)
    assert after == before[:-4096]


def test_bitflip_changes_only_recorded_bytes_in_the_tail(tmp_path: Path) -> None:
    db = make_env(tmp_path)
    before = db.read_bytes()
    d = damage(tmp_path, "bitflip", random.Random(1), nbytes=8192, flips=5)
    after = db.read_bytes()
    assert len(after) == len(before)
    changed = {i for i in range(len(before)) if before[i] != after[i]}
    assert changed and changed <= {off for off, _, _ in d.flips}
    assert all(off >= len(before) - 8192 for off in changed)
    for _, old, new in d.flips:
        assert bin(old ^ new).count("1") == 1
