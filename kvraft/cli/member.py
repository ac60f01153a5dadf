"""``kvraft member list|add|remove|promote``: change who is in the cluster.

To add a node: start it with ``kvraft serve --join ...`` (it waits to be added), then
``kvraft member add ID ADDRESS`` (``--learner`` to add it as a non-voter first and
``kvraft member promote ID`` once it has caught up).

To remove one: ``kvraft member remove ID``; it returns once the leader applied the change
and then waits (``--wait``) until every remaining member applied it too, saying whether
the removed node can be stopped. Stopping it earlier is safe for the data but may leave
the cluster without an electable leader if the leader fails before the others catch up.
"""

from __future__ import annotations

import argparse
from typing import Any

from kvraft.cli.common import EXIT_OK, add_client_options, with_client
from kvraft.cli.output import emit
from kvraft.client import Client, Member


def print_members(members: list[Member], fmt: str, message: str | None = None) -> None:
    rows = [{"id": m.id, "address": m.address, "role": "learner" if m.learner else "voter"}
            for m in members]
    simple = ([message] if message else []) + [
        f"{r['id']}\t{r['address']}\t{r['role']}" for r in rows]
    emit(rows, ["id", "address", "role"], fmt, simple=simple,
         json_value={"members": rows} if message is None else {"result": message,
                                                               "members": rows})


async def _run(c: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        print_members(await c.members(), args.write_out)
        return EXIT_OK
    if args.action == "add":
        members = await c.add_member(args.id, args.address, learner=args.learner)
        role = "learner" if args.learner else "voter"
        what = f"added node {args.id} ({args.address}) as a {role}"
    elif args.action == "remove":
        members = await c.remove_member(args.id)
        what = f"removed node {args.id}"
        # the leader has applied the removal; the others may not have yet
        index = (await c.status()).applied_index
        lagging = await c.wait_applied(index, members, timeout=args.wait)
        if lagging:
            ids = ", ".join(str(i) for i in lagging)
            what += (f"; node(s) {ids} have not applied it yet: keep node {args.id} running "
                     f"until `kvraft status` shows them at applied index {index} or more")
        else:
            what += f"; every remaining member applied it: node {args.id} can be stopped"
    else:
        members = await c.promote_member(args.id)
        what = f"promoted node {args.id} to voter"
    print_members(members, args.write_out, what)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("member", help="list, add, remove or promote members")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = sub.add_parser("list", help="list the members")
    add_client_options(s, default_format="table")
    s = sub.add_parser("add", help="add a voter (or --learner)",
                       description="Add node ID at ADDRESS. Start it first with "
                       "`kvraft serve --join --id ID --listen ADDRESS ...`.")
    s.add_argument("id", type=int)
    s.add_argument("address", help="host:port the new node listens on")
    s.add_argument("--learner", action="store_true", help="add as a non-voting learner")
    add_client_options(s)
    s = sub.add_parser("remove", help="remove a member",
                       description="Remove node ID, then wait (up to --wait seconds) until "
                       "every remaining member has applied the removal, and say whether "
                       "the removed node can be stopped.")
    s.add_argument("id", type=int)
    s.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the remaining members (default 10)")
    add_client_options(s)
    s = sub.add_parser("promote", help="turn a learner into a voter")
    s.add_argument("id", type=int)
    add_client_options(s)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _run(c, a)))
