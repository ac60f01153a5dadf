"""Storage faults: damage the tail of a stopped node's LMDB data file.

The node must be down (the caller kills it first): LMDB maps the file, and damaging a
live map would test the kernel, not kvraft. What kvraft must do with the damage (refuse
to start with a clear error, or recover from its peers, and never lead with bad data) is
judged from the outside: the node log, the cluster's answers and the history.

- ``truncate``: cut the last ``nbytes`` bytes off the file (a torn write at the end).
- ``bitflip``: flip ``flips`` random bits among the last ``nbytes`` bytes (media rot).

Every damage is returned as a record (offsets, old and new bytes) for the nemesis log,
so a run can be replayed and the damage undone by hand if needed.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["truncate", "bitflip"]
MODES: tuple[Mode, ...] = ("truncate", "bitflip")


class NoDataFile(FileNotFoundError):
    """The node's data dir holds no LMDB data file (was it ever started?)."""


@dataclass(slots=True)
class Damage:
    path: str
    mode: Mode
    size_before: int
    size_after: int
    flips: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, old, new)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def data_file(data_dir: Path) -> Path:
    """The largest ``*.mdb`` file under data_dir other than lock files."""
    files = [p for p in data_dir.rglob("*.mdb") if p.name != "lock.mdb" and p.is_file()]
    if not files:
        raise NoDataFile(f"no LMDB data file (*.mdb) under {data_dir}")
    return max(files, key=lambda p: p.stat().st_size)


def truncate_tail(path: Path, nbytes: int) -> Damage:
    size = path.stat().st_size
    new_size = max(0, size - nbytes)
    with path.open("r+b") as fh:
        fh.truncate(new_size)
        os.fsync(fh.fileno())
    return Damage(str(path), "truncate", size, new_size)


def flip_bits(path: Path, nbytes: int, flips: int, rng: random.Random) -> Damage:
    size = path.stat().st_size
    if size == 0:
        return Damage(str(path), "bitflip", 0, 0)
    start = max(0, size - nbytes)
    damage = Damage(str(path), "bitflip", size, size)
    with path.open("r+b") as fh:
        for _ in range(flips):
            offset = rng.randrange(start, size)
            fh.seek(offset)
            old = fh.read(1)[0]
            new = old ^ (1 << rng.randrange(8))
            fh.seek(offset)
            fh.write(bytes([new]))
            damage.flips.append((offset, old, new))
        fh.flush()
        os.fsync(fh.fileno())
    return damage


def damage(data_dir: Path, mode: Mode, rng: random.Random, *, nbytes: int = 16384,
           flips: int = 8) -> Damage:
    """Damage the node's data file (see module docstring). Raises NoDataFile."""
    path = data_file(data_dir)
    if mode == "truncate":
        return truncate_tail(path, nbytes)
    return flip_bits(path, nbytes, flips, rng)
