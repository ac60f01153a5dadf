"""``kvraft snapshot save|now|status|restore``: snapshot files of the KV state.

``save FILE`` downloads the leader's (or ``--node``'s) latest snapshot, checking every
chunk's CRC-32 and the whole file's, with a progress line on a TTY. ``status FILE``
reads a snapshot file and checks it completely. ``now`` makes a node snapshot now.
``restore FILE`` seeds fresh data dirs offline (no node running) to start a new cluster
from the snapshot: ``--cluster SPEC`` seeds every node of a spec (membership: the spec's
nodes, as voters), ``--data-dir DIR`` one node (membership: the snapshot's, or
``--voters``). It refuses a data dir that already holds a node's data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kvraft.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_client_options,
    run_guarded,
    with_client,
)
from kvraft.cli.output import emit, human_bytes
from kvraft.client import Client
from kvraft.cluster_launcher import SpecError, load_spec
from kvraft.core.types import ConfState
from kvraft.errors import SnapshotError, StorageError


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()  # never draw into pipes or logs
        self.last = 0.0  # monotonic time of the last redraw

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done != total):
            return
        self.last = now
        pct = f" ({100 * done // total}%)" if total else ""
        of = f" / {human_bytes(total)}" if total else ""
        print(f"\rsaving snapshot: {human_bytes(done)}{of}{pct}   ", end="", file=sys.stderr,
              flush=True)

    def finish(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


async def _save(c: Client, args: argparse.Namespace) -> int:
    progress = _Progress()
    try:
        info = await c.save_snapshot(args.file, endpoint=args.node, progress=progress,
                                     timeout=max(args.timeout, 60.0))
    finally:
        progress.finish()
    row = {"file": args.file, "index": info.index, "term": info.term,
           "size_bytes": info.size_bytes}
    emit([row], ["file", "index", "term", "size_bytes"], args.write_out,
         simple=[f"saved snapshot at index {info.index} (term {info.term}, "
                 f"{human_bytes(info.size_bytes)}) to {args.file}"])
    return EXIT_OK


async def _now(c: Client, args: argparse.Namespace) -> int:
    info = await c.snapshot(args.node)
    emit([{"index": info.index, "term": info.term, "size_bytes": info.size_bytes}],
         ["index", "term", "size_bytes"], args.write_out,
         simple=[f"snapshot taken at index {info.index} (term {info.term}, "
                 f"{human_bytes(info.size_bytes)})"])
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from kvraft.storage import snapshot as snapfile  # lmdb & co.: only when needed

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"snapshot status: {path} does not exist or is not a file")
    try:
        info = snapfile.verify(path)
    except SnapshotError as e:
        raise CliError(f"snapshot status: {e}", EXIT_FAILED) from None
    p = info.position
    row = {"file": str(path), "index": p.index, "term": p.term, "revision": p.revision,
           "keys": info.keys, "sessions": info.sessions, "size_bytes": info.size_bytes,
           "voters": ",".join(map(str, sorted(p.conf_state.voters))),
           "learners": ",".join(map(str, sorted(p.conf_state.learners)))}
    emit([row], list(row), args.write_out,
         json_value={**row, "format_version": info.format_version, "valid": True})
    return EXIT_OK


def _restore_targets(args: argparse.Namespace) -> tuple[list[tuple[str, Path]],
                                                         ConfState | None, dict[int, str] | None]:
    """(label, data dir) for every node to seed, the membership to write and (from a
    cluster spec) its members' addresses."""
    if bool(args.cluster) == bool(args.data_dir):
        raise CliError("snapshot restore: give exactly one of --cluster SPEC or --data-dir DIR",
                       EXIT_USAGE)
    if args.cluster:
        try:
            spec = load_spec(args.cluster)
        except SpecError as e:
            raise CliError(f"snapshot restore: {e}", EXIT_USAGE) from None
        ids = args.id or spec.ids
        unknown = sorted(set(ids) - set(spec.ids))
        if unknown:
            raise CliError(f"snapshot restore: node(s) {unknown} not in {args.cluster}",
                           EXIT_USAGE)
        return ([(f"node {i}", spec.data_dir(i)) for i in ids],
                ConfState(voters=frozenset(spec.ids)), {n.id: n.address for n in spec.nodes})
    voters = None
    if args.voters:
        try:
            voters = ConfState(voters=frozenset(int(v) for v in args.voters.split(",")))
        except ValueError:
            raise CliError(f"--voters: expected ids like 1,2,3, got {args.voters!r}",
                           EXIT_USAGE) from None
    return [(args.data_dir, Path(args.data_dir))], voters, None


def _restore(args: argparse.Namespace) -> int:
    from kvraft.server.config import NodeConfig  # the server side: only when needed
    from kvraft.storage.offline import restore_offline

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"snapshot restore: {path} does not exist or is not a file")
    targets, conf_state, members = _restore_targets(args)
    rows = []
    for label, data_dir in targets:
        # the node's layout comes from its config type: <data dir>/db and /snapshots
        layout = NodeConfig(node_id=1, address="restore:1", data_dir=data_dir, peers={})
        try:
            info = restore_offline(path, layout.lmdb_dir, layout.snapshot_dir,
                                   conf_state=conf_state, members=members)
        except SnapshotError as e:
            raise CliError(f"snapshot restore: {e}") from None
        except StorageError as e:
            raise CliError(f"snapshot restore into {data_dir}: {e}") from None
        p = info.position
        rows.append({"node": label, "data_dir": str(data_dir), "index": p.index,
                     "term": p.term, "keys": info.keys,
                     "voters": ",".join(map(str, sorted(p.conf_state.voters)))})
    emit(rows, ["node", "data_dir", "index", "term", "keys", "voters"], args.write_out,
         simple=[f"restored {r['keys']} keys at index {r['index']} into {r['data_dir']} "
                 f"(voters {r['voters']})" for r in rows])
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("snapshot", help="save, inspect or take snapshots")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("save", help="download a node's latest snapshot to FILE",
                       description="Download the latest snapshot of the leader (or --node) "
                       "to FILE, checking every chunk; progress is shown on a terminal.")
    s.add_argument("file")
    s.add_argument("--node", metavar="HOST:PORT", help="download from this node instead")
    add_client_options(s)
    s.set_defaults(func=lambda a: with_client(a, lambda c: _save(c, a)))
    s = sub.add_parser("now", help="make a node take a snapshot now")
    s.add_argument("--node", metavar="HOST:PORT", help="this node instead of the leader")
    add_client_options(s)
    s.set_defaults(func=lambda a: with_client(a, lambda c: _now(c, a)))
    s = sub.add_parser("restore", help="seed fresh data dirs from FILE (offline)",
                       description="Seed new data dirs from a snapshot file, offline, to "
                       "start a new cluster from it: every node of --cluster SPEC (the "
                       "spec's nodes become the voters), or one --data-dir DIR (the "
                       "snapshot's voters, or --voters). Then start the nodes as usual.")
    s.add_argument("file")
    s.add_argument("--cluster", metavar="SPEC", help="seed the nodes of this cluster spec")
    s.add_argument("--id", type=int, action="append", metavar="ID",
                   help="with --cluster: only this node (repeatable)")
    s.add_argument("--data-dir", metavar="DIR", help="seed this one data dir")
    s.add_argument("--voters", metavar="ID,...", help="with --data-dir: the new membership")
    s.add_argument("-w", "--write-out", choices=["table", "json", "simple"], default="simple")
    s.set_defaults(func=lambda a: run_guarded(lambda: _restore(a)))
    s = sub.add_parser("status", help="check a snapshot file and show what it holds")
    s.add_argument("file")
    s.add_argument("-w", "--write-out", choices=["table", "json", "simple"], default="table")
    s.set_defaults(func=lambda a: run_guarded(lambda: _status(a)))
