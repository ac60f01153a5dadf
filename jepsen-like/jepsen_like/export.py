"""Export a history for an independent checker (Porcupine-style operations).

The file (``history.porcupine.json``) is one JSON object; ``jepsen-like/README.md``
documents it. Each register operation becomes one Porcupine ``Operation`` (client id,
input, call, output, return); ``call``/``return`` are history event indices, so their
order is exactly the observed real-time order (no timestamp ties). Conventions, the same
as this harness's own checker:

- ``fail`` operations certainly did not happen: omitted.
- reads of unknown outcome (``info``/never completed) constrain nothing: omitted.
- writes and cas of unknown outcome get ``return`` = one past the last event and
  ``output.unknown = true``; a model must accept both "took effect" and "did not".
- set operations (add / read-set) are exported too, with ``"op": "add" | "read-set"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .history import Op

FORMAT = "jepsen-like/porcupine-v1"


def to_porcupine(ops: Iterable[Op]) -> dict[str, Any]:
    ops = list(ops)
    end = 1 + max((op.complete_index if op.complete_index is not None else op.invoke_index
                   for op in ops), default=0)
    out: list[dict[str, Any]] = []
    for op in ops:
        if op.outcome == "fail":
            continue
        unknown = op.outcome == "info"
        if unknown and op.f in ("read", "read-set"):
            continue
        inp: dict[str, Any] = {"op": op.f, "key": op.key}
        output: dict[str, Any] = {"unknown": unknown}
        if op.f == "cas":
            inp["old"], inp["new"] = op.arg
        elif op.f in ("write", "add"):
            inp["value"] = op.arg
        else:
            output["value"] = op.result
        out.append({
            "client_id": op.process,
            "input": inp,
            "call": op.invoke_index,
            "output": output,
            "return": end if unknown or op.complete_index is None else op.complete_index,
            "call_ns": op.call_time,
            "return_ns": op.return_time,
        })
    return {
        "format": FORMAT,
        "model": "register-per-key",
        "initial_value": None,
        "time": "call/return are history event indices; *_ns are monotonic ns",
        "operations": out,
    }


def write_porcupine(ops: Iterable[Op], path: Path) -> None:
    path.write_text(json.dumps(to_porcupine(ops), indent=None, separators=(",", ":")))
