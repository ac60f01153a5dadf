"""``kvraft snapshot save|status`` (and ``restore``): snapshot files of the KV state.

``save FILE`` downloads the leader's (or ``--node``'s) latest snapshot, checking every
chunk's CRC-32 and the whole file's, with a progress line on a TTY. ``status FILE``
reads a snapshot file and checks it completely. ``now`` makes a node snapshot now.
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
    CliError,
    add_client_options,
    run_guarded,
    with_client,
)
from kvraft.cli.output import emit, human_bytes
from kvraft.client import Client
from kvraft.errors import SnapshotError
from kvraft.storage import snapshot as snapfile


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
    s = sub.add_parser("status", help="check a snapshot file and show what it holds")
    s.add_argument("file")
    s.add_argument("-w", "--write-out", choices=["table", "json", "simple"], default="table")
    s.set_defaults(func=lambda a: run_guarded(lambda: _status(a)))
