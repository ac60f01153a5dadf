"""``kvraft leader transfer [--to ID]``: hand leadership to another voter."""

from __future__ import annotations

import argparse
from typing import Any

from kvraft.cli.common import EXIT_OK, add_client_options, with_client
from kvraft.cli.output import emit
from kvraft.client import Client


async def _transfer(c: Client, args: argparse.Namespace) -> int:
    new = await c.transfer_leadership(args.to)
    emit([{"leader": new}], ["leader"], args.write_out,
         simple=[f"leadership transferred to node {new}"])
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("leader", help="leadership operations")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("transfer", help="hand leadership to another voter",
                       description="Ask the leader to hand over to node --to (default: the "
                       "most up-to-date other voter); waits until the new leader is known.")
    s.add_argument("--to", type=int, default=0, metavar="ID")
    add_client_options(s)
    s.set_defaults(timeout=10.0)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _transfer(c, a)))
