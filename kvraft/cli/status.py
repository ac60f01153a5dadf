"""``kvraft status``: one row per node — role, term, leader, indexes, size, health.

Every known endpoint is asked in parallel, plus every member one of them reports, so a
node missing from --endpoints still gets its row. A node that does not answer gets a row
saying so. Exit code 0 when a leader is known, else 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from kvraft.cli.common import EXIT_FAILED, EXIT_OK, CliError, add_client_options, with_client
from kvraft.cli.output import emit, human_bytes
from kvraft.client import Client, ClientError, NodeStatus

COLUMNS = ("id", "address", "role", "term", "leader", "commit", "applied", "log",
           "snapshot", "db_size", "health")


def status_row(address: str, st: NodeStatus | ClientError,
               ids: dict[str, int] | None = None) -> dict[str, Any]:
    """A table row; ``ids`` maps addresses to member ids (for nodes that did not answer)."""
    if isinstance(st, ClientError):
        return {"id": (ids or {}).get(address, "?"), "address": address,
                "role": "unreachable", "health": "unreachable", "error": str(st)}
    return {
        "id": st.id, "address": st.address or address, "role": st.role, "term": st.term,
        "leader": st.leader_id or "none", "commit": st.commit_index,
        "applied": st.applied_index, "log": f"{st.log_first}-{st.log_last}",
        "snapshot": st.snapshot_index, "db_size": human_bytes(st.db_size_bytes),
        "health": "healthy" if st.healthy else (st.health_detail or "unhealthy"),
    }


def status_json(address: str, st: NodeStatus | ClientError,
                ids: dict[str, int] | None = None) -> dict[str, Any]:
    if isinstance(st, ClientError):
        return {"id": (ids or {}).get(address), "address": address, "reachable": False,
                "error": str(st)}
    return {
        "reachable": True, "id": st.id, "address": st.address or address, "role": st.role,
        "term": st.term, "leader_id": st.leader_id, "leader_addr": st.leader_addr,
        "commit_index": st.commit_index, "applied_index": st.applied_index,
        "log_first": st.log_first, "log_last": st.log_last,
        "snapshot_index": st.snapshot_index, "db_size_bytes": st.db_size_bytes,
        "healthy": st.healthy, "health_detail": st.health_detail, "revision": st.revision,
        "version": st.version, "cluster_id": st.cluster_id,
        "members": [{"id": m.id, "address": m.address, "learner": m.learner}
                    for m in st.membership],
    }


async def _status(c: Client, args: argparse.Namespace) -> int:
    rows = await c.cluster_status(timeout=args.timeout)
    answered = [st for _, st in rows if isinstance(st, NodeStatus)]
    ids = {m.address: m.id for st in answered for m in st.membership}
    rows.sort(key=lambda r: (ids.get(r[0], 1 << 64) if isinstance(r[1], ClientError)
                             else r[1].id, r[0]))
    emit([status_row(a, st, ids) for a, st in rows], COLUMNS, args.write_out,
         json_value=[status_json(a, st, ids) for a, st in rows])
    if not answered:
        raise CliError(f"no node answered (asked {', '.join(a for a, _ in rows)}); is the "
                       f"cluster running? start one with `kvraft cluster up`")
    if not any(st.role == "leader" for st in answered):
        raise CliError("the cluster has no leader right now (an election may be under way, "
                       "or too few nodes are up for a quorum)", EXIT_FAILED)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("status", help="show every node's role, term and progress",
                              description="Show one row per node: id, address, role, term, "
                              "leader, commit and applied index, log range, snapshot index, "
                              "database size and health.")
    add_client_options(p, default_format="table")
    p.set_defaults(timeout=2.0)
    p.set_defaults(func=lambda a: with_client(a, lambda c: _status(c, a)))
