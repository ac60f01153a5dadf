"""Child process of the crash tests: writes to an LmdbLogStore until it is killed.

    python -m tests.storage.crash_child <store dir> <seed> <max ops>

Protocol on stdout, one line per event, flushed at once:

    open <first> <last> <term> <vote> <commit>   after opening (recovery done)
    save <start> <n> <term> <vote> <commit>      about to save entries start..start+n-1
                                                 (n may be 0) with this hard state
    compact <index> <term>                       about to compact up to index
    ok                                           the announced write returned (durable)

Entry i written with term t carries ``entry_data(i, t)``, so the parent can rebuild the
whole expected log from the announcements alone.
"""

from __future__ import annotations

import random
import sys

from kvraft.core.types import Entry, HardState, SnapshotMeta
from kvraft.storage.lmdb_log import LmdbLogStore


def entry_data(index: int, term: int) -> bytes:
    return (b"%d/%d;" % (index, term)).ljust(100, b"#")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(path: str, seed: int, max_ops: int) -> None:
    rng = random.Random(seed)
    store = LmdbLogStore(path, map_size=1 << 30)
    hs, _ = store.initial_state()
    say(f"open {store.first_index()} {store.last_index()} {hs.term} {hs.vote} {hs.commit}")
    term, vote, commit = max(hs.term, 1), hs.vote, hs.commit
    for _ in range(max_ops):
        first, last = store.first_index(), store.last_index()
        if rng.random() < 0.05 and commit >= first:
            index = rng.randint(first, commit)
            t = store.term(index)
            say(f"compact {index} {t}")
            store.compact(SnapshotMeta(index, t))
            say("ok")
            continue
        if rng.random() < 0.1:  # a new term, sometimes a vote
            term += 1
            vote = rng.choice([0, 0, 2, 3])
        if rng.random() < 0.15 and commit < last:
            start = rng.randint(max(commit + 1, first), last)  # overwrite a suffix
        else:
            start = last + 1
        n = rng.choice([0, 1, 1, 2, 8, 64, 200])
        new_last = start + n - 1 if n else last
        commit = rng.randint(commit, max(commit, min(new_last, commit + 100)))
        say(f"save {start} {n} {term} {vote} {commit}")
        ents = [Entry(term, i, data=entry_data(i, term)) for i in range(start, start + n)]
        store.save(entries=ents, hard_state=HardState(term, vote, commit))
        say("ok")
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
