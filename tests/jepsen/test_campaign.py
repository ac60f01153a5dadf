"""End to end against in-process fakes: workload -> faults -> history -> checkers -> report.

The linearizable fake must always pass; each deliberately broken fake must be caught.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jepsen_like.campaign import RunConfig, run_once
from jepsen_like.history import pair, read_history
from jepsen_like.targets import fake_target

RUN_PY = Path(__file__).resolve().parents[2] / "jepsen-like" / "run.py"


def run(tmp_path: Path, spec: str, **kw: Any) -> dict[str, Any]:
    cfg = RunConfig(time=2.0, fault_seconds=0.4, quiet_seconds=0.3, rate=500.0, seed=7,
                    **kw)
    return asyncio.run(run_once(cfg, fake_target(spec, seed=7), tmp_path))


def test_linearizable_fake_passes_and_the_run_folder_is_complete(tmp_path: Path) -> None:
    s = run(tmp_path, "fake")
    assert s["verdict"] == "valid"
    assert s["checkers"]["linearizable"]["verdict"] == "valid"
    assert s["ops"] > 200 and s["counts"]["ok"] > 0
    assert sum(s["faults"].values()) >= 2
    for name in ("history.jsonl", "nemesis.jsonl", "history.porcupine.json", "summary.json",
                 "timeline.html", "latency.svg", "throughput.svg"):
        assert (tmp_path / name).stat().st_size > 0, name
    # the history on disk is the one that was checked
    assert len(pair(read_history(tmp_path / "history.jsonl"))) == s["ops"]
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == "valid"
    nemesis = [json.loads(line) for line in (tmp_path / "nemesis.jsonl").read_text().splitlines()]
    assert nemesis[-1]["type"] == "heal-all"


def test_timeline_is_self_contained_and_shows_ops_and_faults(tmp_path: Path) -> None:
    run(tmp_path, "fake")
    html = (tmp_path / "timeline.html").read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html), "no external assets"
    assert html.count("class='op'") > 200
    assert "class='fault'" in html
    assert "data-d=" in html and "addEventListener" in html
    assert "<svg" in html and "Latency" in html and "Throughput" in html


@pytest.mark.parametrize("mode", ["stale-reads", "lost-writes"])
def test_broken_register_store_is_caught_with_a_window(tmp_path: Path, mode: str) -> None:
    s = run(tmp_path, f"fake-broken:{mode}")
    assert s["verdict"] == "invalid"
    anomalies = s["checkers"]["linearizable"]["anomalies"]
    assert anomalies and anomalies[0]["window_ops"]
    html = (tmp_path / "timeline.html").read_text()
    assert "id='anomaly'" in html
    assert "have no linearization" in html


def test_lost_adds_are_reported_by_the_set_checker(tmp_path: Path) -> None:
    s = run(tmp_path, "fake-broken:lost-adds", workload="set")
    assert s["verdict"] == "invalid"
    assert s["checkers"]["set"]["lost"] > 0


def test_set_workload_on_the_linearizable_fake_loses_nothing(tmp_path: Path) -> None:
    s = run(tmp_path, "fake", workload="set")
    assert s["verdict"] == "valid", s["checkers"]
    assert s["checkers"]["set"]["acknowledged"] > 100


def test_cli_runs_a_campaign_and_rechecks_a_history(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(RUN_PY), "--target", "fake-broken:stale-reads", "--time", "1",
         "--runs", "2", "--fault-seconds", "0.3", "--quiet-seconds", "0.2", "--seed", "3",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert re.search(r"^\s+1\s+invalid", out.stdout, re.M)
    assert re.search(r"^\s+2\s+invalid", out.stdout, re.M)
    (run_dir,) = [p for p in tmp_path.glob("*/run-01")]
    check = subprocess.run([sys.executable, str(RUN_PY), "--check", str(run_dir)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 1
    assert json.loads(check.stdout)["linearizable"]["verdict"] == "invalid"
