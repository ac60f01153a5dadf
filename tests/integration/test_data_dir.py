"""One data dir, one process: a second `kvraft serve` on a node's data dir is refused."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .cluster import Cluster, free_port, get, put

pytestmark = pytest.mark.integration


def test_second_process_on_a_data_dir_is_refused_with_one_line(cluster: Cluster) -> None:
    leader = cluster.leader()
    put(leader, b"dd/k", b"v")
    n = cluster.nodes[1]
    # same node, same data dir, another port (so only the data dir can collide)
    cmd = [
        sys.executable, "-m", "kvraft.cli.main", "serve", "--id", "1",
        "--listen", f"127.0.0.1:{free_port()}", "--peers", cluster.peers_flag,
        "--data-dir", str(n.data_dir), "--log-format", "json",
        "--log-file", str(cluster.root / "second.log"),
    ]
    r = subprocess.run(cmd, capture_output=True, timeout=60, cwd=cluster.root)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "in use by another process" in lines[0], lines
    assert b"serving" not in r.stdout
    # the running node is untouched
    assert n.alive
    assert get(cluster.leader(), b"dd/k").kvs[0].value == b"v"
