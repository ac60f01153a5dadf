"""The short CI campaign: real kvraft processes under real faults, histories checked.

Network: namespaces + nftables where available (root), else the per-link TCP proxy; the
summary records which. Longer campaigns: ``python jepsen-like/run.py`` (see
jepsen-like/README.md). KVRAFT_SLOW=1 lengthens these runs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from jepsen_like.campaign import RunConfig, run_once
from jepsen_like.kvraft_target import KvraftCluster

pytestmark = pytest.mark.integration
SCALE = 3.0 if os.environ.get("KVRAFT_SLOW") else 1.0


def campaign(run_dir: Path, **kw: Any) -> dict[str, Any]:
    cluster = KvraftCluster(nodes=3, net="auto", op_timeout=2.0)
    cfg = RunConfig(fault_seconds=3.0, quiet_seconds=2.0, concurrency=10, rate=150.0,
                    seed=1234, final_seconds=40.0, **kw)
    cfg.time *= SCALE
    return asyncio.run(run_once(cfg, cluster.target, run_dir))


def test_register_under_partitions_kills_and_pauses_is_linearizable(tmp_path: Path) -> None:
    s = campaign(tmp_path, workload="register", nemeses=["partition", "kill", "pause"],
                 time=24.0)
    assert s["checkers"]["linearizable"]["verdict"] == "valid", s["checkers"]
    assert s["final_reads_ok"]
    assert s["network"] in ("netns", "proxy")
    assert sum(s["faults"].values()) >= 3
    assert s["counts"]["ok"] > 500, s["counts"]
    assert (tmp_path / "nodes" / "n1.log").stat().st_size > 0
    assert (tmp_path / "timeline.html").exists()


def test_set_survives_kills_and_a_damaged_disk(tmp_path: Path) -> None:
    s = campaign(tmp_path, workload="set", nemeses=["kill", "corrupt"], time=15.0)
    res = s["checkers"]["set"]
    assert res["verdict"] == "valid", res
    assert res["acknowledged"] > 300
    nemesis = (tmp_path / "nemesis.jsonl").read_text()
    assert '"nemesis": "corrupt"' in nemesis and "after_restart" in nemesis
