"""History format: recording, JSON lines round trip, pairing rules, Porcupine export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jepsen_like.export import to_porcupine
from jepsen_like.history import HistoryError, HistoryRecorder, pair, read_history

from .builders import events, ops


def test_recorder_writes_json_lines_that_read_back(tmp_path: Path) -> None:
    ticks = iter(range(0, 10_000, 7))
    rec = HistoryRecorder(tmp_path / "h.jsonl", clock=lambda: next(ticks))
    rec.append("invoke", 0, "write", "x", "1")
    rec.append("invoke", 1, "read", "x", None, consistency="linearizable")
    rec.append("ok", 1, "read", "x", "1", consistency="linearizable", node=2)
    rec.append("info", 0, "write", "x", "1", error="deadline exceeded")
    rec.close()
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    assert json.loads(lines[2]) == {
        "index": 2, "type": "ok", "process": 1, "f": "read", "key": "x", "value": "1",
        "time": 21, "consistency": "linearizable", "node": 2,
    }
    back = read_history(tmp_path / "h.jsonl")
    assert back == rec.events()
    (w, r) = pair(back)
    assert (w.outcome, w.error, w.return_time) == ("info", "deadline exceeded", 28)
    assert (r.result, r.extra["node"]) == ("1", 2)


def test_invocation_without_completion_is_info() -> None:
    (op,) = ops(("invoke", 0, "write", "x", "1"))
    assert op.outcome == "info" and op.complete_index is None


@pytest.mark.parametrize("rows, message", [
    ([("invoke", 0, "read", "x", None), ("invoke", 0, "read", "x", None)], "outstanding"),
    ([("ok", 0, "read", "x", None)], "without an invocation"),
    ([("invoke", 0, "read", "x", None), ("ok", 0, "read", "y", None)], "invoked read x"),
    ([("invoke", 0, "write", "x", "1"), ("info", 0, "write", "x", "1"),
      ("invoke", 0, "read", "x", None)], "new process"),
])
def test_pairing_rejects_broken_histories(rows: list[tuple[object, ...]],
                                          message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        pair(events(*rows))


def test_porcupine_export_follows_the_documented_conventions() -> None:
    h = ops(
        ("invoke", 0, "write", "x", "1"), ("ok", 0, "write", "x", "1"),
        ("invoke", 1, "cas", "x", ["1", "2"]), ("info", 1, "cas", "x", ["1", "2"]),
        ("invoke", 2, "read", "x", None), ("fail", 2, "read", "x", None),
        ("invoke", 3, "read", "x", None), ("ok", 3, "read", "x", "2"),
        ("invoke", 4, "read", "x", None), ("info", 4, "read", "x", None),
    )
    doc = to_porcupine(h)
    assert doc["format"] == "jepsen-like/porcupine-v1"
    got = [(o["client_id"], o["input"], o["call"], o["output"], o["return"])
           for o in doc["operations"]]
    assert got == [
        (0, {"op": "write", "key": "x", "value": "1"}, 0, {"unknown": False}, 1),
        (1, {"op": "cas", "key": "x", "old": "1", "new": "2"}, 2, {"unknown": True}, 10),
        (3, {"op": "read", "key": "x"}, 6, {"unknown": False, "value": "2"}, 7),
    ]
