"""The ``kvraft`` command line: parses arguments and dispatches to a subcommand module.

Each subcommand lives in its own module under ``kvraft.cli`` and exposes
``register(subparsers) -> None``; the parser it adds sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `kvraft --help` lists them. Each module owns its flags.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "kv",
    "status",
    "member",
    "leader",
    "snapshot",
    "cluster",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    from kvraft import __version__

    parser = argparse.ArgumentParser(
        prog="kvraft", description="A Raft-replicated key-value store."
    )
    parser.add_argument("--version", action="version", version=f"kvraft {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"kvraft.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["serve"]:
        # before the subcommands import grpc, which reads its socket layer once
        from kvraft.server.grpc_engine import prefer_polling

        prefer_polling()
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
