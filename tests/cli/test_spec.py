"""Cluster spec files: parsing, errors a user sees, and round trips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvraft.cluster_launcher import SpecError, ephemeral_spec, load_spec, render_spec
from kvraft.cluster_launcher.local import port_free
from kvraft.cluster_launcher.procs import (
    NodeRecord,
    PidFile,
    is_node_process,
    looks_like_node,
    process_start_time,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name,size", [("local-3", 3), ("local-5", 5)])
def test_shipped_specs_load(name: str, size: int) -> None:
    spec = load_spec(REPO / "cluster" / f"{name}.toml", cwd=REPO)
    assert spec.name == name
    assert spec.ids == list(range(1, size + 1))
    assert spec.data_root == REPO / "data" / name
    assert spec.data_dir(2) == REPO / "data" / name / "n2"
    assert all(a.startswith("127.0.0.1:") for a in spec.endpoints())
    assert spec.raft["tick_ms"] == 50


def test_relative_data_root_follows_the_working_directory(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('data_root = "d"\n[[node]]\nid = 1\naddress = "127.0.0.1:1"\n')
    assert load_spec(f, cwd=tmp_path / "x").data_root == tmp_path / "x" / "d"
    assert load_spec(f, cwd=tmp_path / "x").name == "c"


@pytest.mark.parametrize(
    "text,message",
    [
        ("data_root = 'd'\n", "at least one [[node]]"),
        ("[[node]]\nid = 1\naddress = '127.0.0.1:1'\n", "needs data_root"),
        ("data_root = 'd'\n[[node]]\nid = 0\naddress = 'a:1'\n", "positive integer id"),
        ("data_root = 'd'\n[[node]]\nid = 1\naddress = 'nocolon'\n", "not host:port"),
        ("data_root = 'd'\n[[node]]\nid = 1\naddress = 'a:1'\n[[node]]\nid = 1\n"
         "address = 'a:2'\n", "unique"),
        ("data_root = 'd'\n[[node]]\nid = 1\naddress = 'a:1'\n[[node]]\nid = 2\n"
         "address = 'a:1'\n", "distinct"),
        ("data_root = 'd'\n[raft]\nx = [1]\n[[node]]\nid = 1\naddress = 'a:1'\n",
         "[raft]"),
        ("data_root = \n", "not valid TOML"),
    ],
)
def test_malformed_specs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_spec(f)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_ephemeral_spec_round_trips_and_uses_free_ports(tmp_path: Path) -> None:
    spec = ephemeral_spec(3, tmp_path, raft={"tick_ms": 20, "pre_vote": True},
                          limits={"max_txn_ops": 8}, metrics=True)
    assert spec.path is not None and spec.path.exists()
    again = load_spec(spec.path)
    assert again == spec
    assert render_spec(again) == spec.path.read_text()
    assert all(port_free(a) for a in spec.endpoints())
    assert len({*spec.endpoints(), *(n.metrics for n in spec.nodes)}) == 6


def test_port_free_detects_a_listener() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not port_free(f"127.0.0.1:{s.getsockname()[1]}")


def test_node_argv_recognition() -> None:
    argv = ["/v/bin/python", "-m", "kvraft.cli.main", "serve", "--cluster", "c.toml", "--id", "2"]
    assert looks_like_node(argv, 2)
    assert not looks_like_node(argv, 3)
    assert not looks_like_node(["sleep", "100"], 2)
    assert looks_like_node(["kvraft", "serve", "--id=4"], 4)


def test_a_recorded_pid_is_only_ours_while_it_runs_kvraft_serve(tmp_path: Path) -> None:
    # A process that is not kvraft serve (but alive) must never be taken for a node.
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    try:
        rec = NodeRecord(1, proc.pid, process_start_time(proc.pid), "127.0.0.1:1", "log")
        assert not is_node_process(rec)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    gone = NodeRecord(1, proc.pid, None, "127.0.0.1:1", "log")
    assert not is_node_process(gone)
    pf = PidFile("c", None, os.getpid(), (rec,))
    pf.dump(tmp_path / "pids.json")
    assert PidFile.load(tmp_path / "pids.json") == pf
    (tmp_path / "bad.json").write_text("{not json")
    assert PidFile.load(tmp_path / "bad.json") is None
