"""Child process of the joined-transaction crash test: writes Readys (new entries + the
apply of the entries before them, in ONE transaction) until it is killed.

    python -m tests.server.joint_crash_child <data dir> <seed>

Protocol on stdout, one line per event, flushed at once:

    open <log last> <applied>       after opening
    save <log last> <applied>       about to write: the log then ends at <log last> and
                                    the state is applied to <applied>
    ok                              the announced write returned (durable)

Entry i is a put of key ``k<i>`` to ``v<i>``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from kvraft.core.types import ConfState, HardState
from kvraft.kv.machine import KvStateMachine
from kvraft.storage.lmdb_log import LmdbLogStore
from kvraft.storage.snapshot import SnapshotDir
from kvraft.storage.state import LmdbStateStore
from tests.kv.helpers import Log, put

ONE = ConfState(voters=frozenset({1}))


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    log = LmdbLogStore(path / "db", map_size=1 << 30)
    machine = KvStateMachine(LmdbStateStore(log.env), SnapshotDir(path / "snapshots"))
    joint = machine.joint_apply(log)
    assert joint is not None
    last, applied = log.last_index(), machine.applied()[0]
    say(f"open {last} {applied}")
    for _ in range(100_000):
        gen = Log(start=last + 1)
        n = rng.choice([1, 2, 5, 40])
        new = [gen.cmd(put(b"k%d" % i, b"v%d" % i)) for i in range(last + 1, last + 1 + n)]
        committed = log.entries(applied + 1, last + 1) if applied < last else []
        say(f"save {new[-1].index} {last}")
        log.save(
            entries=new, hard_state=HardState(1, 1, last),
            extra=lambda txn, c=committed: None if not c else joint(txn, c, ONE, None),
        )
        say("ok")
        last, applied = new[-1].index, last


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
