"""structlog set-up for the daemon: JSON lines (console renderer on a TTY), to stderr or a file.

Every line carries ``node_id`` (bound globally through contextvars) plus whatever the
caller binds (the driver adds ``term`` where it matters). stdout is reserved for the one
``serving`` line that tells launchers the node is up.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import structlog


def configure_logging(
    node_id: int, *, fmt: str | None, log_file: str | None, level: int = logging.INFO
) -> TextIO:
    """Configure structlog globally; returns the stream logs go to (caller closes a file)."""
    stream: TextIO = (
        open(log_file, "a", buffering=1, encoding="utf-8") if log_file else sys.stderr
    )
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(node_id=node_id)
    # grpc and asyncio use the stdlib logger: route warnings and errors to the same stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    return stream


def announce_serving(node_id: int, address: str) -> None:
    """The one line on stdout: launchers wait for it."""
    sys.stdout.write(json.dumps({"event": "serving", "node_id": node_id, "address": address}))
    sys.stdout.write("\n")
    sys.stdout.flush()
