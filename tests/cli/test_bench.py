"""``kvraft bench`` end to end: it starts its own local cluster, drives it and reports.

Never asserts on speed (the machine is shared): only that the command works, that its
JSON report has every documented field with sane types, and that bad flags are refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kvraft.cli.benchload import LoadSpec, percentile

CMD = [sys.executable, "-m", "kvraft.cli.main", "bench"]


def _bench(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KVRAFT_ENDPOINTS"}
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.mark.integration
@pytest.mark.parametrize("workload", ["put", "get"])
def test_bench_runs_a_local_cluster_and_reports_json(workload: str) -> None:
    proc = _bench("--workload", workload, "--duration", "2", "--warmup", "0.5",
                  "--concurrency", "8", "--keyspace", "200", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["workload"] == workload
    assert report["local_cluster"] is True
    assert len(report["endpoints"]) == 3
    assert report["concurrency"] == 8 and report["value_size"] == 100
    assert report["ops"] > 0 and report["ops_per_s"] > 0
    assert report["errors"] == 0 and report["error_kinds"] == {}
    lat = report["latency_ms"]
    assert set(lat) == {"p50", "p90", "p99", "p999", "max", "mean"}
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert report["client_cpu_s"] >= 0 and report["client_cpu_cores"] >= 0
    assert report["consistency"] == ("linearizable" if workload == "get" else None)


def test_bench_refuses_bad_flags() -> None:
    proc = _bench("--concurrency", "0", "--endpoints", "127.0.0.1:1")
    assert proc.returncode == 2
    assert "--concurrency must be at least 1" in proc.stderr


def test_load_spec_checks_ranges() -> None:
    LoadSpec().check()
    for bad in (LoadSpec(workload="scan"), LoadSpec(duration=0), LoadSpec(read_ratio=1.5),
                LoadSpec(keyspace=0)):
        with pytest.raises(ValueError):
            bad.check()


def test_percentile_is_nearest_rank_in_ms() -> None:
    samples = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    assert percentile(samples, 0.50) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 0.999) == 100.0
    assert percentile([], 0.5) is None
