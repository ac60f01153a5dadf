"""The real `kvraft` command against a real 3-node cluster: output in every format, exit
codes, the error cases, membership, leadership and snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvraft.cluster_launcher import LocalCluster, NodeSpec, ephemeral_spec
from kvraft.cluster_launcher.spec import free_ports
from tests.client.realcluster import heal, running_cluster, wait_for

pytestmark = pytest.mark.integration

KVRAFT = Path(sys.executable).with_name("kvraft")


def kvraft(*argv: str, env: dict[str, str] | None = None, timeout: float = 60,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `kvraft` command; fail the test if it prints a traceback."""
    cmd = [str(KVRAFT)] if KVRAFT.exists() else [sys.executable, "-m", "kvraft.cli.main"]
    full_env = {**os.environ, **(env or {})}
    r = subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout,
                       env=full_env, cwd=cwd)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from running_cluster(tmp_path_factory.mktemp("cli"))


@pytest.fixture
def eps(cluster: LocalCluster) -> dict[str, str]:
    """Environment naming the cluster's endpoints, after making sure it is healthy."""
    heal(cluster)
    return {"KVRAFT_ENDPOINTS": ",".join(cluster.endpoints())}


def test_kv_commands(eps: dict[str, str]) -> None:
    r = kvraft("put", "greeting", "hello", env=eps)
    assert (r.returncode, r.stdout, r.stderr) == (0, "OK\n", "")
    assert kvraft("get", "greeting", env=eps).stdout == "greeting\nhello\n"
    doc = json.loads(kvraft("get", "greeting", "-w", "json", env=eps).stdout)
    assert doc["kvs"][0]["value"] == "hello" and doc["kvs"][0]["version"] == 1
    assert doc["header"]["leader_id"] in (1, 2, 3)
    table = kvraft("get", "greeting", "-w", "table", env=eps).stdout
    assert "| KEY " in table and "| greeting | hello " in table
    for k in ("u/1", "u/2", "u/3"):
        assert kvraft("put", k, k.upper(), env=eps).returncode == 0
    assert kvraft("get", "u/", "--prefix", "--print-value-only", env=eps).stdout == \
        "U/1\nU/2\nU/3\n"
    assert kvraft("scan", "u/", "--prefix", "--keys-only", "--page-size", "2",
                  env=eps).stdout == "u/1\nu/2\nu/3\n"
    assert kvraft("get", "u/1", "--consistency", "stale", "--print-value-only",
                  env=eps).stdout == "U/1\n"
    r = kvraft("txn", "--if", "value(greeting) == hello", "--then", "put greeting bonjour",
               "--else", "get greeting", env=eps)
    assert (r.returncode, r.stdout) == (0, "SUCCESS\nOK\n")
    r = kvraft("txn", "--if", "value(greeting) == hello", "--then", "put greeting hi",
               "--else", "get greeting", env=eps)
    assert (r.returncode, r.stdout) == (0, "FAILURE\ngreeting\nbonjour\n")
    assert kvraft("del", "u/", "--prefix", env=eps).stdout == "3\n"


def test_error_cases_print_one_line_and_exit_non_zero(eps: dict[str, str]) -> None:
    r = kvraft("get", "never-written", env=eps)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "error: get never-written: key not found\n"
    r = kvraft("put", "k" * 5000, "v", env=eps)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "4096" in r.stderr
    dead = ",".join(f"127.0.0.1:{p}" for p in free_ports(3))
    r = kvraft("put", "k", "v", "--endpoints", dead, "--timeout", "0.5")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no node could serve it" in r.stderr and "cannot connect" in r.stderr
    r = kvraft("status", "--endpoints", dead)
    assert r.returncode == 1 and "no node answered" in r.stderr and "unreachable" in r.stdout
    r = kvraft("get", "k", "--endpoints", "localhost")
    assert r.returncode == 2 and "host:port" in r.stderr
    r = kvraft("get")  # argparse: usage on stderr, exit 2
    assert r.returncode == 2 and "usage:" in r.stderr


def test_status_table_and_json(cluster: LocalCluster, eps: dict[str, str]) -> None:
    r = kvraft("status", env=eps)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    heads = [h.strip() for h in lines[1].strip("|").split("|")]
    assert heads == ["ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LOG",
                     "SNAPSHOT", "DB SIZE", "HEALTH"]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[3:-1]]
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert sorted(row[2] for row in rows) == ["follower", "follower", "leader"]
    assert {row[10] for row in rows} == {"healthy"}
    nodes = json.loads(kvraft("status", "-w", "json", env=eps).stdout)
    leader = next(n["id"] for n in nodes if n["role"] == "leader")
    assert all(n["leader_id"] == leader and n["applied_index"] > 0 for n in nodes)
    follower = next(n["id"] for n in nodes if n["role"] != "leader")
    cluster.kill_node(follower)
    r = kvraft("status", env=eps)
    assert r.returncode == 0  # a leader is still known
    assert r.stdout.count("unreachable") == 2  # role and health of the dead node
    dead = [ln for ln in r.stdout.splitlines() if "unreachable" in ln]
    assert dead[0].split("|")[1].strip() == str(follower)  # its id, from the membership


def test_membership_and_leadership(cluster: LocalCluster, eps: dict[str, str]) -> None:
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    if 4 not in cluster.extra:
        cluster.add_node(NodeSpec(4, address))
    address = cluster.node_spec(4).address
    cluster.start_node(4, join=True)
    try:
        r = kvraft("member", "add", "4", address, "--learner", env=eps)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"added node 4 ({address}) as a learner")
        wait_for(lambda: (st := cluster.status(4)) is not None and st.applied_index > 0
                 or None, 20, "the learner to catch up")
        assert kvraft("member", "promote", "4", env=eps).returncode == 0
        members = json.loads(kvraft("member", "list", "-w", "json", env=eps).stdout)
        assert [(m["id"], m["role"]) for m in members["members"]] == [
            (1, "voter"), (2, "voter"), (3, "voter"), (4, "voter")]
        target = next(i for i in (1, 2, 3) if (st := cluster.status(i)) and not st.is_leader)
        r = kvraft("leader", "transfer", "--to", str(target), env=eps)
        assert (r.returncode, r.stdout) == (0, f"leadership transferred to node {target}\n")
        r = kvraft("member", "remove", "4", env=eps)
        assert r.returncode == 0 and r.stdout.startswith("removed node 4")
        assert "every remaining member applied it: node 4 can be stopped" in r.stdout
        # what the command promised: every remaining member is past the removal
        nodes = json.loads(kvraft("status", "-w", "json", env=eps).stdout)
        remaining = [n for n in nodes if n["id"] in (1, 2, 3)]
        assert len(remaining) == 3
        assert all(sorted(m["id"] for m in n["members"]) == [1, 2, 3] for n in remaining)
        r = kvraft("member", "remove", "99", env=eps)
        assert r.returncode == 2 and r.stderr.startswith("error: remove member 99")
    finally:
        cluster.stop_node(4)


def test_snapshot_save_status_restore(cluster: LocalCluster, eps: dict[str, str],
                                      tmp_path: Path) -> None:
    for i in range(20):
        assert kvraft("put", f"snap/{i:02}", str(i), env=eps).returncode == 0
    assert kvraft("snapshot", "now", env=eps).returncode == 0
    file = tmp_path / "backup.snap"
    r = kvraft("snapshot", "save", str(file), env=eps)
    assert r.returncode == 0 and r.stdout.startswith("saved snapshot at index ")
    info = json.loads(kvraft("snapshot", "status", str(file), "-w", "json").stdout)
    assert info["valid"] and info["keys"] >= 20 and info["voters"] == "1,2,3"
    # seed a brand-new 3-node cluster from it (different ports, fresh data dirs)
    spec = ephemeral_spec(3, tmp_path / "new")
    r = kvraft("snapshot", "restore", str(file), "--cluster", str(spec.path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("restored") == 3
    r = kvraft("snapshot", "restore", str(file), "--cluster", str(spec.path))
    assert r.returncode == 1 and "fresh data dir" in r.stderr
    with LocalCluster(spec) as new:
        new.start(timeout=30)
        env = {"KVRAFT_ENDPOINTS": ",".join(spec.endpoints())}
        r = kvraft("get", "snap/", "--prefix", "--keys-only", "--print-value-only", env=env)
        assert r.returncode == 0 and r.stdout.count("\n") == 20
        assert kvraft("put", "after-restore", "x", env=env).returncode == 0
    damaged = tmp_path / "damaged.snap"
    damaged.write_bytes(file.read_bytes()[:-10])
    r = kvraft("snapshot", "status", str(damaged))
    assert r.returncode == 1 and r.stderr.startswith("error: snapshot status: ")
