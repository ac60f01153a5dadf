"""What the client subcommands share: endpoint and output flags, running a client call,
and turning expected failures into one clear line and an exit code.

Exit codes: 0 success; 1 the operation failed (unreachable cluster, no leader, not
found...); 2 bad arguments (ours or the server's INVALID_ARGUMENT); 3 a write's outcome
is unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from kvraft.cli.output import FORMATS
from kvraft.client import Client, ClientError, InvalidArgument, OutcomeUnknown
from kvraft.client.endpoints import normalize_address

ENDPOINTS_ENV = "KVRAFT_ENDPOINTS"
DEFAULT_ENDPOINTS = "127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"  # cluster/local-3.toml

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


class CliError(Exception):
    """An expected failure: print ``error: <message>`` and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def add_client_options(p: argparse.ArgumentParser, *, default_format: str = "simple") -> None:
    """--endpoints, --timeout and -w, for subcommands that talk to a cluster."""
    p.add_argument(
        "--endpoints", metavar="HOST:PORT,...",
        help=f"cluster nodes to contact (default: ${ENDPOINTS_ENV}, else {DEFAULT_ENDPOINTS})")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="overall deadline of the operation, retries included (default: 5)")
    p.add_argument("-w", "--write-out", choices=FORMATS, default=default_format,
                   help=f"output format (default: {default_format})")


def endpoints_from(args: argparse.Namespace) -> list[str]:
    """--endpoints, else $KVRAFT_ENDPOINTS, else the local-3 cluster; validated."""
    raw = args.endpoints or os.environ.get(ENDPOINTS_ENV) or DEFAULT_ENDPOINTS
    items = [e for e in raw.split(",") if e.strip()]
    if not items:
        raise CliError("no endpoints given; pass --endpoints HOST:PORT,...", EXIT_USAGE)
    try:
        return [normalize_address(e) for e in items]
    except ValueError as e:
        raise CliError(f"{e}; pass --endpoints HOST:PORT,...", EXIT_USAGE) from None


def fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run_guarded(body: Callable[[], int]) -> int:
    """Run ``body`` and map expected failures to one stderr line and an exit code."""
    try:
        return body()
    except CliError as e:
        return fail(str(e), e.code)
    except OutcomeUnknown as e:
        return fail(str(e), EXIT_UNKNOWN)
    except InvalidArgument as e:
        return fail(str(e), EXIT_USAGE)
    except ClientError as e:
        return fail(str(e), EXIT_FAILED)
    except ValueError as e:  # the client library rejected an argument before sending
        return fail(str(e), EXIT_USAGE)
    except KeyboardInterrupt:
        return fail("interrupted", 130)


def with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[int]]) -> int:
    """Build a Client from the flags, run ``body`` with it, close it; expected failures
    become one line on stderr and a non-zero exit code (no traceback)."""

    def go() -> int:
        eps = endpoints_from(args)

        async def main() -> int:
            async with Client(eps, timeout=args.timeout) as c:
                return await body(c)

        return asyncio.run(main())

    return run_guarded(go)
