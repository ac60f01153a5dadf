"""Rendering CLI results as ``table``, ``json`` or ``simple`` text (``-w``).

Subcommands build rows (dicts of plain values) and hand them here; no subcommand prints
tables or JSON by itself. JSON keeps byte strings readable: valid UTF-8 becomes a
string, anything else ``{"base64": "..."}``.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMATS = ("table", "json", "simple")


def text(b: bytes) -> str:
    """Bytes for humans: UTF-8 text when valid, else a Python bytes literal."""
    try:
        return b.decode()
    except UnicodeDecodeError:
        return repr(b)


def jsonable(value: Any) -> Any:
    """Make ``value`` JSON-serialisable (bytes -> str or {"base64": ...})."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(jsonable(value), indent=2), file=out or sys.stdout)


def _cell(value: Any) -> str:
    if isinstance(value, bytes):
        return text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A boxed table, like etcdctl's: header row of upper-case column names."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    heads = [c.upper().replace("_", " ") for c in columns]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: Iterable[str]) -> str:
        return "|" + "|".join(f" {v:<{w}} " for v, w in zip(values, widths, strict=True)) + "|"

    return "\n".join([rule, line(heads), rule, *(line(r) for r in cells), rule])


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, *,
         json_value: Any = None, simple: Iterable[str] | None = None,
         out: TextIO | None = None) -> None:
    """Print ``rows`` in format ``fmt``. ``json_value`` (default: the rows) is what
    ``json`` prints; ``simple`` (default: tab-separated cells) the lines of ``simple``."""
    stream = out or sys.stdout
    if fmt == "json":
        print_json(rows if json_value is None else json_value, stream)
    elif fmt == "table":
        print(render_table(rows, columns), file=stream)
    else:
        lines = simple if simple is not None else (
            "\t".join(_cell(r.get(c)) for c in columns) for r in rows)
        for ln in lines:
            print(ln, file=stream)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
