"""``kvraft serve``: run one node. Parses flags, builds a NodeConfig, hands over to the server.

Expected failures (bad config, damaged storage, port in use) print ONE line to stderr and
exit non-zero: 2 for configuration mistakes, 1 for everything else.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kvraft.errors import Corrupted, StorageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run a kvraft node",
        description="Run one kvraft node (flags override values from --cluster/--config).",
    )
    src = p.add_argument_group("where the configuration comes from")
    src.add_argument("--cluster", metavar="SPEC", help="cluster spec TOML (needs --id)")
    src.add_argument("--config", metavar="FILE", help="node config TOML")
    node = p.add_argument_group("node")
    node.add_argument("--id", type=int, dest="node_id", help="this node's id (> 0)")
    node.add_argument("--listen", metavar="HOST:PORT", help="address to serve on")
    node.add_argument("--peers", metavar="ID=HOST:PORT,...", help="initial voters (bootstrap)")
    node.add_argument("--data-dir", metavar="DIR", help="where the node keeps its state")
    node.add_argument("--cluster-id", metavar="NAME", help="cluster name peers must share")
    node.add_argument("--metrics", metavar="HOST:PORT",
                      help="serve Prometheus metrics at http://HOST:PORT/metrics")
    node.add_argument("--join", action="store_true",
                      help="start as a new member that waits to be added (no bootstrap)")
    raft = p.add_argument_group("raft")
    raft.add_argument("--tick-ms", type=int, help="milliseconds per Raft tick (default 50)")
    raft.add_argument("--election-ticks", type=int, help="election timeout in ticks (default 10)")
    raft.add_argument("--snapshot-entries", type=int,
                      help="applied entries between snapshots (default 100000)")
    raft.add_argument("--commit-flush-ms", type=int,
                      help="a new commit index reaches followers with the next append, or "
                      "after this many ms (default 5; 0: at once, in a message of its own)")
    raft.add_argument("--follower-apply-ms", type=int,
                      help="at low load a follower applies in batches, holding committed "
                      "entries up to this many ms (a leader: those it already answered, "
                      "until its next write; default 50; 0: at once)")
    raft.add_argument("--quorum-first-ms", type=int,
                      help="a leader sends appends at once to the followers that make a "
                      "quorum with it fastest, to the others in batches every this many "
                      "ms or with each heartbeat (default 50; 0: to every follower at once)")
    logs = p.add_argument_group("logging")
    logs.add_argument("--log-format", choices=("json", "console"),
                      help="default: console on a TTY, json otherwise")
    logs.add_argument("--log-file", metavar="PATH", help="log here instead of stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kvraft.server.config import ConfigError, build_config
    from kvraft.server.logs import configure_logging

    raft: dict[str, Any] = {}
    for flag in ("tick_ms", "election_ticks", "snapshot_entries", "commit_flush_ms",
                 "follower_apply_ms", "quorum_first_ms"):
        if getattr(args, flag) is not None:
            raft[flag] = getattr(args, flag)
    try:
        config = build_config(
            cluster=args.cluster,
            config=args.config,
            node_id=args.node_id,
            listen=args.listen,
            peers=args.peers,
            data_dir=args.data_dir,
            cluster_id=args.cluster_id,
            join=args.join,
            metrics=args.metrics,
            raft=raft,
            log_format=args.log_format,
            log_file=args.log_file,
        )
    except ConfigError as exc:
        print(f"kvraft serve: {exc}", file=sys.stderr)
        return 2
    stream = configure_logging(config.node_id, fmt=config.log_format, log_file=config.log_file)
    from kvraft.server.node import StartupError
    from kvraft.server.node import run as run_node

    try:
        return run_node(config)
    except Corrupted as exc:
        print(f"kvraft serve: node {config.node_id} refuses to start: damaged storage in "
              f"{config.data_dir}: {exc}", file=sys.stderr)
        return 1
    except (StorageError, StartupError, OSError) as exc:
        print(f"kvraft serve: node {config.node_id} cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        if stream is not sys.stderr:
            stream.close()
